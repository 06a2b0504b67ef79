"""``asrkd combine-data DST SRC1 SRC2 ...``: the union of data directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.data import datatools
from asrkd.commands._common import add_force_arg

NAME = "combine-data"
HELP = "combine data directories into one (refuses ids that differ between sources)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dst", type=Path, metavar="DST", help="new data directory")
    p.add_argument("srcs", type=Path, nargs="+", metavar="SRC", help="data directories to combine")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    datatools.combine_data(args.dst, args.srcs, force=args.force)
    return 0
