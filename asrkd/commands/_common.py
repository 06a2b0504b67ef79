"""Argument helpers shared by subcommands (config file + ``--set`` overrides, --force)."""

from __future__ import annotations

import argparse
from typing import TypeVar

from asrkd.config import load_config

T = TypeVar("T")


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML file with values for this step")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.hidden_dim=1024 (repeatable, type-checked)",
    )


def add_force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="redo the step even if it is complete")


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    return load_config(cls, args.config, args.overrides)


def add_no_verify_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-verify", action="store_true",
                   help="do not checksum the frame stores read (features, labels, soft targets) when opening "
                        "them; for stores too large to hash at every start (verification is on by default)")
