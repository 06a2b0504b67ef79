"""Argument helpers shared by subcommands (config file + ``--set`` overrides, --force, --device)."""

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


def _device_spec(value: str) -> str:
    from asrkd.errors import AsrkdError
    from asrkd.inference.spec import check_device_spec

    try:
        return check_device_spec(value)
    except AsrkdError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda[:N]`` (resolved by :func:`asrkd.inference.device.resolve_device`)."""
    p.add_argument("--device", type=_device_spec, default="auto", metavar="auto|cpu|cuda[:N]",
                   help="where models run: auto (a GPU if CUDA is available, else the CPU), cpu, cuda or "
                        "cuda:N (default: auto)")


def add_precision_arg(p: argparse.ArgumentParser, help: str) -> None:  # noqa: A002 - argparse's name
    """``--precision auto|bf16|fp16|fp32`` of inference (resolved by
    :func:`asrkd.inference.device.resolve_precision` for the device)."""
    from asrkd.inference.spec import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=help)


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    return load_config(cls, args.config, args.overrides)


def add_no_verify_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-verify", action="store_true",
                   help="do not checksum the frame stores read (features, labels, soft targets) when opening "
                        "them; for stores too large to hash at every start (verification is on by default)")
