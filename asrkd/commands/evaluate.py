"""``asrkd evaluate``: frame accuracy of a model or an ensemble of models."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asrkd.commands._common import add_device_arg, add_force_arg, add_no_verify_arg, add_precision_arg

NAME = "evaluate"
HELP = "frame accuracy and WER (hybrid decoding) of one model or an ensemble (mean / geometric mean of posteriors)"

log = logging.getLogger("asrkd.commands.evaluate")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    p.add_argument("--model", action="append", required=True, type=Path,
                   help="checkpoint (exp/<name>/final.pt); repeat for an ensemble")
    from asrkd.inference.ensemble import COMBINE_RULES

    p.add_argument("--combine", choices=COMBINE_RULES, default="mean",
                   help="how an ensemble combines posteriors")
    p.add_argument("--feats", required=True, type=Path, help="data dir to evaluate on (data/<set>)")
    p.add_argument("--labels", required=True, type=Path, help="label store of that set")
    p.add_argument("--out", required=True, type=Path, help="output dir (writes frame_acc.json)")
    add_precision_arg(p, "inference precision (auto: bf16 on CPUs with native bf16, else fp32; on a GPU "
                         "bf16 where supported, else fp16)")
    add_device_arg(p)
    add_force_arg(p)
    from asrkd.decode.wer import add_wer_arguments

    add_wer_arguments(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.evaluation.evaluate import frame_accuracy
    from asrkd.fileio import atomic_write_json, is_done, mark_done
    from asrkd.inference.device import resolve_device, resolve_precision
    from asrkd.inference.model import load_model

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    models = [load_model(p, device) for p in args.model]
    _run_wer(args, models, precision)
    if is_done(args.out, ".frame_acc.done") and not args.force:
        log.info("%s: frame accuracy already computed (use --force to redo)", args.out)
        return 0
    result = frame_accuracy(models, args.feats, args.labels, args.combine, precision)
    atomic_write_json(args.out / "frame_acc.json", result)
    mark_done(args.out, {"frame_acc": result["frame_acc"]}, name=".frame_acc.done")
    log.info("frame accuracy %.4f over %d frames (%d model(s), %s); members: %s", result["frame_acc"],
             result["frames"], len(models), args.combine,
             " ".join(f"{a:.4f}" for a in result["member_frame_acc"]))
    return 0


def _run_wer(args: argparse.Namespace, models: list, precision: str) -> None:
    """WER by hybrid decoding (asrkd.decode.wer), when --lang is given."""
    from asrkd.decode.wer import run_wer
    from asrkd.inference.ensemble import ensemble_posteriors

    run_wer(args, lambda feats: ensemble_posteriors(models, feats, args.combine, precision))
