"""``asrkd make-units``: build data/lang (units, HMM topology, label inventory)."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_config_args, add_force_arg, config_from_args

NAME = "make-units"
HELP = "build the label inventory data/lang (sentencepiece / lexicon / grapheme units x HMM states)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", type=Path, help="training data directory (its text trains the units)")
    p.add_argument("lang_dir", type=Path, help="output directory, e.g. data/lang")
    add_config_args(p)
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.data.datadir import read_table
    from asrkd.lang.inventory import LangConfig, make_lang

    cfg = config_from_args(LangConfig, args)
    texts = list(read_table(args.data_dir / "text", allow_empty_value=True).values())
    make_lang(texts, args.lang_dir, cfg, force=args.force)
    return 0
