"""``asrkd recipe-plan --conf DIR [STEP ...]``: the experiment's commands, as a recipe runs them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "recipe-plan"
HELP = "print the asrkd commands of a recipe's experiment steps (teachers, baselines, caches, students, evaluation)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("steps", nargs="*", metavar="STEP", help="steps to print (default: all, in order)")
    p.add_argument("--conf", required=True, type=Path, metavar="DIR",
                   help="the recipe's conf directory (recipe.yaml, student.yaml, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe.yaml setting (repeatable, as for asrkd recipe-conf)")


def run(args: argparse.Namespace) -> int:
    from asrkd.experiment.plan import Recipe, plan_lines

    lines = plan_lines(Recipe.load(args.conf, args.overrides), args.steps)
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0
