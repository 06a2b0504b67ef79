"""``asrkd align``: flat-start Viterbi training (monophone, then optionally tied-state triphone),
alignment with a trained aligner, or realignment with trained DNNs."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_config_args, add_device_arg, add_force_arg, add_no_verify_arg, config_from_args

NAME = "align"
HELP = "flat-start Viterbi training of frame labels (monophone, triphone), or aligning a set with a trained aligner or DNN(s)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    p.add_argument("data_dir", type=Path, help="data directory with feats/ (compute-feats)")
    p.add_argument("lang_dir", type=Path,
                   help="data/lang (make-units); to align with a triphone model or DNNs on tied states: data/lang_tri")
    p.add_argument("--name", default="flatstart", help="label set name: DATA/labels/NAME (default flatstart)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--exp", type=Path, help="train the aligner on DATA into this experiment directory")
    g.add_argument("--model", type=Path, help="align DATA with a trained aligner (EXP/final.gmm.npz)")
    g.add_argument("--dnn", type=Path, nargs="+", metavar="MODEL",
                   help="realign DATA with trained DNN checkpoint(s) (several: their ensemble)")
    p.add_argument("--tied-lang", type=Path, default=None,
                   help="with --exp and triphone.num_leaves > 0: where the tied-state lang goes (default LANG_tri)")
    p.add_argument("--prior-labels", type=Path, default=None,
                   help="with --dnn: label store whose class frequencies are the priors (the models' training labels)")
    p.add_argument("--skip-unalignable", action="store_true",
                   help="leave out utterances that cannot be aligned (each logged as a WARNING and listed in "
                        "the label set's failed file and report.json) instead of refusing the set")
    p.add_argument("--max-skip-fraction", type=float, default=0.05, metavar="F",
                   help="with --skip-unalignable, still refuse the set when more than this share of its "
                        "utterances cannot be aligned (default 0.05)")
    add_device_arg(p)  # --dnn: where the models run
    add_config_args(p)
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.align.config import AlignConfig
    from asrkd.align.pipeline import SkipPolicy
    from asrkd.errors import AsrkdError

    if not 0.0 <= args.max_skip_fraction <= 1.0:
        raise AsrkdError(f"--max-skip-fraction must be in [0, 1], got {args.max_skip_fraction}")
    policy = SkipPolicy(args.skip_unalignable, args.max_skip_fraction)
    if args.exp is not None:
        from asrkd.align.pipeline import train_and_align

        cfg = config_from_args(AlignConfig, args)
        train_and_align(args.data_dir, args.lang_dir, args.name, args.exp, cfg, args.force, args.tied_lang, policy)
    elif args.dnn is not None:
        from asrkd.decode.realign import realign_with_dnn

        if args.prior_labels is None:
            raise AsrkdError("--dnn needs --prior-labels (the label store the models were trained on)")
        cfg = config_from_args(AlignConfig, args)
        realign_with_dnn(args.data_dir, args.lang_dir, args.name, args.dnn, args.prior_labels, cfg.dnn, args.force,
                         policy, args.device)
    else:
        from asrkd.align.pipeline import align_with_model

        if args.config or args.overrides:
            raise AsrkdError("--config/--set apply to training (--exp) and --dnn; a --model carries its own settings")
        align_with_model(args.data_dir, args.lang_dir, args.name, args.model, args.force, policy)
    return 0
