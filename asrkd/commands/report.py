"""``asrkd report EXP_DIR``: Table 1, the temperature sweep and section 6 of an experiment."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "report"
HELP = "results of an experiment dir: Table 1 (+ sweep plot, small-data table) as RESULTS.md and results.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from asrkd.experiment.report import DEFAULT_DIRS

    p.add_argument("exp_dir", type=Path, metavar="EXP_DIR", help="experiment directory of a recipe (exp/)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default EXP_DIR)")
    for system, d in DEFAULT_DIRS.items():
        p.add_argument(f"--{system}", default=d, metavar="DIR",
                       help=f"directory of the {system} system under EXP_DIR (default {d})")
    p.add_argument("--quiet", action="store_true", help="do not print RESULTS.md")


def run(args: argparse.Namespace) -> int:
    from asrkd.experiment.report import SYSTEMS, write_report

    _, md = write_report(args.exp_dir, args.out, {s: getattr(args, s) for s in SYSTEMS})
    if not args.quiet:
        sys.stdout.write(md)
    return 0
