"""The ``asrkd`` command line: a thin face over the library (no library module imports it).

Each subcommand lives in ``asrkd/commands/<name>.py`` and defines::

    NAME = "compute-feats"            # the subcommand
    HELP = "one line for the overview"
    def add_arguments(p: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int | None: ...

Modules are discovered automatically, so adding a command touches no shared file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from asrkd import __version__, commands
from asrkd.errors import AsrkdError
from asrkd.logs import setup_logging

log = logging.getLogger("asrkd.cli")


def _command_modules() -> list:
    mods = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"asrkd.commands.{info.name}"))
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asrkd",
        description="Distil an ensemble of hybrid DNN-HMM acoustic models into one student.",
    )
    parser.add_argument("--version", action="version", version=f"asrkd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    log.debug("command line: %s", " ".join(sys.argv))
    try:
        rc = args._run(args)
    except AsrkdError as e:
        print(f"asrkd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asrkd {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
