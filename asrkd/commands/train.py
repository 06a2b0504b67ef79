"""``asrkd train``: train one acoustic model (a teacher; students add soft targets)."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_config_args, add_device_arg, add_force_arg, add_no_verify_arg

NAME = "train"
HELP = "train an acoustic model on frame labels (resumes an interrupted run in --out)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    add_config_args(p)
    p.add_argument("--feats", required=True, type=Path, help="training data dir (data/<set>, with feats/ and cmvn.json)")
    p.add_argument("--labels", required=True, type=Path, help="training label store (data/<set>/labels/<name>)")
    p.add_argument("--dev-feats", required=True, type=Path, help="dev data dir (early stopping, lr schedule)")
    p.add_argument("--dev-labels", required=True, type=Path, help="dev label store")
    p.add_argument("--out", required=True, type=Path, help="experiment dir (exp/<name>)")
    p.add_argument("--seed", type=int, default=None, help="shortcut for --set seed=N")
    p.add_argument("--soft-targets", type=Path, default=None, metavar="CACHE_DIR",
                   help="student: soft-target cache (asrkd cache-targets) read with loss.soft_weight > 0")
    p.add_argument("--teacher", action="append", default=[], metavar="CKPT",
                   help="student, online reference mode: teacher checkpoint run inside the loop (repeat)")
    add_device_arg(p)
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.train.status import training_complete

    if training_complete(args.out, args.force):  # asked before torch is imported (seconds)
        return 0
    from asrkd.inference.device import resolve_device
    from asrkd.train.config import load_train_config
    from asrkd.train.loop import TrainData, train

    overrides = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
    cfg = load_train_config(args.config, overrides)
    device = resolve_device(args.device)
    soft = None
    if args.soft_targets is not None or args.teacher:
        from asrkd.softtargets.source import training_soft_source

        soft = training_soft_source(args.feats, args.labels, cfg.loss.temperature, args.soft_targets, args.teacher,
                                    device=device)
    train(cfg, TrainData(args.feats, args.labels, args.dev_feats, args.dev_labels, soft=soft), args.out,
          force=args.force, device=device)
    return 0
