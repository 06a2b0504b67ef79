"""``asrkd recipe-conf FILE [KEY]``: a recipe's settings (conf/recipe.yaml) for its run.sh."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "recipe-conf"
HELP = "print a recipe's settings (conf/recipe.yaml, type-checked) as shell assignments for run.sh"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, metavar="FILE", help="the recipe settings, recipes/<corpus>/conf/recipe.yaml")
    p.add_argument("key", nargs="?", default=None, metavar="KEY", help="print this setting's bare value only")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting (repeatable, type-checked; lists as '1 2 5' or '[1, 2, 5]')")


def run(args: argparse.Namespace) -> int:
    from asrkd.experiment.recipe import load_recipe_config, shell_assignments

    sys.stdout.write(shell_assignments(load_recipe_config(args.file, args.overrides), args.key))
    return 0
