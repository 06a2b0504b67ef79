"""``asrkd cache-targets``: run teacher checkpoints once and cache their combined soft targets."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_device_arg, add_force_arg, add_no_verify_arg, add_precision_arg

NAME = "cache-targets"
HELP = "run N teachers once over a data set and cache the combined tempered posteriors"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_no_verify_arg(p)
    from asrkd.inference.spec import COMBINE_RULES
    from asrkd.softtargets.cache import DEFAULT_SHARD_FRAMES
    from asrkd.softtargets.choice import DENSE_MAX_CLASSES, FORMAT_CHOICES
    from asrkd.softtargets.formats import DEFAULT_K

    p.add_argument("--model", action="append", required=True, metavar="CKPT",
                   help="teacher checkpoint (repeat for each ensemble member), e.g. exp/t1/final.pt")
    p.add_argument("--feats", required=True, type=Path, metavar="DATA_DIR",
                   help="data dir with feats/ and utt2num_frames, e.g. data/train")
    p.add_argument("--T", type=float, required=True, help="temperature of the soft targets")
    p.add_argument("--combine", choices=COMBINE_RULES, default="mean",
                   help="ensemble rule: arithmetic mean of probabilities or normalised geometric mean")
    p.add_argument("--format", choices=FORMAT_CHOICES, default="auto",
                   help="top-k + tail mass, or dense fp16; auto: top-k when the inventory has more than "
                        "--dense-max-classes classes, else dense; other-than-auto: the one auto does not choose")
    p.add_argument("--dense-max-classes", type=int, default=DENSE_MAX_CLASSES,
                   help="auto: dense fp16 up to this many classes, top-k above")
    p.add_argument("--k", type=int, default=DEFAULT_K, help="classes kept per frame (topk)")
    p.add_argument("--out", required=True, type=Path, metavar="CACHE_DIR", help="cache directory to write")
    p.add_argument("--lang", type=Path, default=None, help="data/lang to check the label inventory against")
    add_precision_arg(p, "teacher inference: bf16/fp16 autocast or fp32 (auto: bf16 on CPUs with native bf16, "
                         "else fp32; on a GPU bf16 where supported, else fp16)")
    add_device_arg(p)
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes (per torchrun rank)")
    p.add_argument("--shard-frames", type=int, default=DEFAULT_SHARD_FRAMES, help="frames per shard (about)")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.distributed import init_distributed, shutdown
    from asrkd.inference.device import resolve_device
    from asrkd.softtargets.run import cache_targets

    # Under torchrun the ranks split the shards (gloo on CPU, nccl with each rank on its GPU).
    device = resolve_device(args.device)
    info = init_distributed(device)
    try:
        cache_targets(
            args.model, args.feats, args.out, T=args.T, combine=args.combine, storage=args.format,
            k=args.k, dense_max_classes=args.dense_max_classes, precision=args.precision, device=device,
            nj=args.nj, shard_frames=args.shard_frames,
            lang_dir=args.lang, force=args.force,
        )
    finally:
        shutdown(info)
    return 0
