"""``asrkd evaluate``: frame accuracy (and WER by hybrid decoding) of a model or an ensemble."""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from asrkd.commands._common import add_device_arg, add_force_arg, add_no_verify_arg, add_precision_arg
from asrkd.inference.spec import COMBINE_RULES

if TYPE_CHECKING:
    from asrkd.decode.wer import WerSetup

NAME = "evaluate"
HELP = "frame accuracy and WER (hybrid decoding) of one model or an ensemble (mean / geometric mean of posteriors)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    p.add_argument("--model", action="append", required=True, type=Path,
                   help="checkpoint (exp/<name>/final.pt); repeat for an ensemble")
    p.add_argument("--combine", choices=COMBINE_RULES, default="mean",
                   help="how an ensemble combines posteriors")
    p.add_argument("--feats", required=True, type=Path, help="data dir to evaluate on (data/<set>)")
    p.add_argument("--labels", required=True, type=Path, help="label store of that set")
    p.add_argument("--out", required=True, type=Path, help="output dir (writes frame_acc.json)")
    add_precision_arg(p, "inference precision (auto: bf16 on CPUs with native bf16, else fp32; on a GPU "
                         "bf16 where supported, else fp16)")
    add_device_arg(p)
    add_force_arg(p)
    g = p.add_argument_group("WER (hybrid decoding; runs when --graph or --lang is given)")
    g.add_argument("--graph", type=Path, default=None,
                   help="word decoding graph dir (asrkd mkgraph): decode words through HCLG and score WER")
    g.add_argument("--nj", type=int, default=1, help="graph decoding: utterances decoded in parallel (processes)")
    g.add_argument("--lang", type=Path, default=None,
                   help="without --graph: lang dir (data/lang) for the unit-LM decoder (an n-gram over the "
                        "lang's units from --train-data's text)")
    g.add_argument("--train-data", type=Path, default=None,
                   help="training data dir: its text trains the unit LM and gives the word list")
    g.add_argument("--prior-labels", type=Path, default=None,
                   help="training label store for the class priors (default: no prior division)")
    g.add_argument("--dev", type=Path, default=None,
                   help="dev data dir (with feats and text): sweep LM weight / insertion penalty there")
    g.add_argument("--decode-config", type=Path, default=None, help="YAML with DecodeConfig values")
    g.add_argument("--decode-set", dest="decode_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a DecodeConfig value, e.g. --decode-set beam=16 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from asrkd.decode.status import decoder_tag, wer_complete
    from asrkd.evaluation.status import frame_accuracy_complete

    # The library's own skip rules, asked before torch is imported: a complete evaluation
    # (a rerun of a recipe) then costs milliseconds instead of torch's start-up.
    # Asked quietly: when one step is left to do, its library function says which one is skipped.
    wer = args.graph is not None or args.lang is not None
    if frame_accuracy_complete(args.out, args.force, quiet=True) and (
            not wer or wer_complete(args.out, decoder_tag(args.graph), args.force, quiet=True)):
        logging.getLogger("asrkd.commands.evaluate").info("%s: evaluation is complete; skipping (use --force to redo)",
                                                          args.out)
        return 0
    from asrkd.distributed import init_distributed, shutdown
    from asrkd.evaluation.evaluate import write_frame_accuracy
    from asrkd.inference.device import resolve_device, resolve_precision
    from asrkd.inference.ensemble import ensemble_posteriors
    from asrkd.inference.model import load_model

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    # Under torchrun the ranks split the utterances (frame accuracy: counts summed; WER: the
    # posteriors gathered on rank 0, which decodes). Frame accuracy comes first so that no rank
    # waits in a collective while rank 0 decodes.
    info = init_distributed(device)
    try:
        # Loaded on first use only: a complete evaluation (both steps skipped) loads nothing.
        models = functools.cache(lambda: [load_model(p, device) for p in args.model])
        write_frame_accuracy(models, args.feats, args.labels, args.out, args.combine, precision, force=args.force,
                             dist_info=info)
        if wer:
            from asrkd.decode.wer import write_wer

            write_wer(lambda feats: ensemble_posteriors(models(), feats, args.combine, precision), args.feats,
                      args.out, _wer_setup(args), force=args.force)
    finally:
        shutdown(info)
    return 0


def _wer_setup(args: argparse.Namespace) -> WerSetup:
    from asrkd.config import load_config
    from asrkd.decode.decoder import DecodeConfig
    from asrkd.decode.wer import WerSetup
    from asrkd.errors import AsrkdError

    if args.graph is None and args.train_data is None:
        raise AsrkdError("--lang needs --train-data (the unit LM and word list come from its text)")
    if args.nj < 1:
        raise AsrkdError(f"--nj must be >= 1, got {args.nj}")
    return WerSetup(lang=args.lang, train_data=args.train_data, prior_labels=args.prior_labels, dev=args.dev,
                    decode=load_config(DecodeConfig, args.decode_config, args.decode_overrides),
                    graph=args.graph, nj=args.nj)
