"""``asrkd augment-feats SRC LABELS OUT --copies K``: a transfer set of SRC plus augmented copies."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asrkd.commands._common import add_force_arg, add_no_verify_arg

NAME = "augment-feats"
HELP = "write a data dir of SRC's labelled frames plus K augmented copies (noise + frequency mask)"

log = logging.getLogger("asrkd.commands.augment_feats")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    p.add_argument("src", type=Path, metavar="SRC", help="data dir with feats/ and cmvn.json (e.g. data/train)")
    p.add_argument("labels", type=Path, metavar="LABELS", help="its frame labels (e.g. data/train/labels/ali)")
    p.add_argument("out", type=Path, metavar="OUT", help="new data dir (feats/, labels/<name>/, cmvn.json)")
    p.add_argument("--copies", type=int, default=2, help="augmented copies per utterance (the source is kept too)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-sd", type=float, default=0.4,
                   help="Gaussian noise, in standard deviations of each feature bin (CMVN stats)")
    p.add_argument("--max-mask-bins", type=int, default=8, help="one frequency mask of 0..N adjacent bins per copy")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.features.augment import augment_data_dir

    augment_data_dir(args.src, args.labels, args.out, args.copies, args.seed, args.noise_sd,
                     args.max_mask_bins, force=args.force)
    return 0
