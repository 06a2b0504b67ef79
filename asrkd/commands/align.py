"""``asrkd align``: flat-start Viterbi training, or alignment with a trained aligner."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_config_args, add_force_arg, add_no_verify_arg, config_from_args

NAME = "align"
HELP = "flat-start Viterbi training of frame labels, or aligning a set with a trained aligner"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    p.add_argument("data_dir", type=Path, help="data directory with feats/ (compute-feats)")
    p.add_argument("lang_dir", type=Path, help="data/lang (make-units)")
    p.add_argument("--name", default="flatstart", help="label set name: DATA/labels/NAME (default flatstart)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--exp", type=Path, help="train the aligner on DATA into this experiment directory")
    g.add_argument("--model", type=Path, help="align DATA with a trained aligner (EXP/final.gmm.npz)")
    p.add_argument("--skip-unalignable", action="store_true",
                   help="leave out utterances that cannot be aligned (each logged as a WARNING and listed in "
                        "the label set's failed file and report.json) instead of refusing the set")
    p.add_argument("--max-skip-fraction", type=float, default=0.05, metavar="F",
                   help="with --skip-unalignable, still refuse the set when more than this share of its "
                        "utterances cannot be aligned (default 0.05)")
    add_config_args(p)
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.align.flatstart import AlignConfig
    from asrkd.align.pipeline import SkipPolicy, align_with_model, train_and_align
    from asrkd.errors import AsrkdError

    if not 0.0 <= args.max_skip_fraction <= 1.0:
        raise AsrkdError(f"--max-skip-fraction must be in [0, 1], got {args.max_skip_fraction}")
    policy = SkipPolicy(args.skip_unalignable, args.max_skip_fraction)
    if args.exp is not None:
        cfg = config_from_args(AlignConfig, args)
        train_and_align(args.data_dir, args.lang_dir, args.name, args.exp, cfg, args.force, policy)
    else:
        if args.config or args.overrides:
            raise AsrkdError("--config/--set apply to training (--exp); a --model carries its own settings")
        align_with_model(args.data_dir, args.lang_dir, args.name, args.model, args.force, policy)
    return 0
