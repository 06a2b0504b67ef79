"""The ``asrkd`` command line: a thin face over the library (no library module imports it).

Each subcommand lives in ``asrkd/commands/<name>.py`` and defines::

    NAME = "compute-feats"            # the subcommand
    HELP = "one line for the overview"
    def add_arguments(p: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int | None: ...

Modules are discovered automatically, so adding a command touches no shared file. The module
file is the command name with ``_`` for ``-``; when the command line names a command, only its
module is imported (importing torch for every command costs seconds at start-up).
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


def _command_modules(only: str | None = None) -> list:
    names = [i.name for i in pkgutil.iter_modules(commands.__path__) if not i.name.startswith("_")]
    if only is not None and only.replace("-", "_") in names:
        names = [only.replace("-", "_")]
    mods = [importlib.import_module(f"asrkd.commands.{n}") for n in names]
    return sorted(mods, key=lambda m: m.NAME)


def _named_command(argv: list[str]) -> str | None:
    """The first non-option word of ``argv`` (the subcommand), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asrkd",
        description="Distil an ensemble of hybrid DNN-HMM acoustic models into one student.",
    )
    parser.add_argument("--version", action="version", version=f"asrkd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _command_modules(only):
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_named_command(argv))
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    if hasattr(args, "no_verify"):  # commands that read frame stores
        from asrkd.framestore import set_verify_on_open

        set_verify_on_open(not args.no_verify)
    log.debug("command line: %s", " ".join(sys.argv))
    try:
        rc = args._run(args)
    except AsrkdError as e:
        print(f"asrkd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, read-only or missing directory, permissions: the user's to fix
        what = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        print(f"asrkd {args.command}: error: {what}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asrkd {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
