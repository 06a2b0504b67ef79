"""``asrkd import-feats SCP_OR_ARK DATA_DIR``: Kaldi features -> DATA_DIR/feats + utt2num_frames."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_force_arg
from asrkd.features.kaldi_io import import_feats

NAME = "import-feats"
HELP = "import Kaldi features (.scp or .ark) into DATA_DIR/feats, utt2num_frames and cmvn.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, metavar="SCP_OR_ARK", help="Kaldi feats .scp (ark:offset) or .ark file")
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="data directory the utterances belong to")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    store = import_feats(args.source, args.data_dir, force=args.force)
    print(f"{args.data_dir}: imported {len(store)} utterances, {store.total_frames} frames")
    return 0
