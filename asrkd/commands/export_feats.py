"""``asrkd export-feats DATA_DIR OUT_PREFIX``: features as Kaldi ``OUT_PREFIX.ark`` + ``.scp``."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.features.kaldi_io import export_feats

NAME = "export-feats"
HELP = "export DATA_DIR/feats as Kaldi OUT_PREFIX.ark + OUT_PREFIX.scp (ark:offset)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="data directory with a complete feats/ store")
    p.add_argument("out_prefix", type=Path, metavar="OUT_PREFIX", help="writes OUT_PREFIX.ark and OUT_PREFIX.scp")


def run(args: argparse.Namespace) -> int:
    ark, scp = export_feats(args.data_dir, args.out_prefix)
    print(f"wrote {ark} and {scp}")
    return 0
