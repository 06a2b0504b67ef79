"""Distillation benchmarks: soft-target storage size and the cost of reading the cache.

- ``cache_bytes_per_frame``: bytes on disk per frame of a top-k cache (default k) for a
  2000-class inventory, measured on a written cache; ``dense_fp32_bytes_per_frame`` the same
  distribution stored dense in fp32 (what the cache avoids).
- ``distill_epoch_over_hard_epoch``: time of a training epoch reading the cache (top-k targets,
  a = 0.5, T = 2) over a hard-label epoch, same data, model and steps (target <= 1.15).
- ``online_epoch_over_cached_epoch``: an epoch with 4 teachers run inside the loop on every
  batch over an epoch reading the cache.

Shape: the hinton2015 preset (26 x 40 input, 8 x 2560 ReLU), 2000 classes, on synthetic
features (timing does not depend on the values). Epochs are the loop's compute core: the
frame loader (prefetch thread, soft source) and :class:`asrkd.train.step.Stepper`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import say

NUM_CLASSES = 2000
NUM_TEACHERS = 4
UTTS, FRAMES_PER_UTT = 16, 320  # 5120 frames = 10 steps of 512


def _data(d: Path) -> dict[str, int]:
    import numpy as np

    from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
    from asrkd.data.datadir import write_table
    from asrkd.framestore import write_store

    rng = np.random.default_rng(0)
    feats = {f"s{i % 4}-u{i:03d}": rng.standard_normal((FRAMES_PER_UTT, 40)).astype(np.float32) for i in range(UTTS)}
    counts = {u: FRAMES_PER_UTT for u in feats}
    write_store(d / "feats", sorted(feats.items()), "float32", (40,), attrs={"fingerprint": "bench"})
    write_table(d / "utt2num_frames", {u: str(n) for u, n in counts.items()})
    acc = CmvnAccumulator(40)
    for u, a in feats.items():
        acc.add(u.split("-")[0], a)
    write_cmvn(d, acc.to_json())
    labels = {u: rng.integers(0, NUM_CLASSES, n).astype(np.int32) for u, n in counts.items()}
    write_store(d / "labels", sorted(labels.items()), "int32", (),
                attrs={"num_classes": NUM_CLASSES, "lang_fingerprint": "bench", "feats_fingerprint": "bench"})
    return counts


def run(args: argparse.Namespace) -> dict[str, float]:
    import numpy as np
    import torch

    from asrkd.features.cmvn import load_cmvn
    from asrkd.config import from_dict
    from asrkd.framestore import FrameStore
    from asrkd.models import PRESETS, ModelConfig, build_model
    from asrkd.softtargets.cache import CacheSpec, write_cache
    from asrkd.softtargets.formats import DEFAULT_K, TargetFormat, dense_fp32_bytes_per_frame
    from asrkd.softtargets.source import OnlineTeacherSource, open_cached_source
    from asrkd.train.config import TrainConfig
    from asrkd.data.labelled import open_labelled_frames
    from asrkd.inference.device import resolve_precision
    from asrkd.inference.model import InferenceModel
    from asrkd.train.data import FrameLoader
    from asrkd.train.step import Stepper, make_optimizer

    logging.getLogger("asrkd").setLevel(logging.WARNING)
    cfg_model = ModelConfig(**PRESETS["hinton2015"], num_classes=NUM_CLASSES)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="asrkd-bench-distill-") as tmp:
        d = Path(tmp)
        counts = _data(d / "train")
        feats = FrameStore(d / "train" / "feats")
        T = 2.0
        g = torch.Generator().manual_seed(0)
        W = torch.randn(40, NUM_CLASSES, generator=g)
        spec = CacheSpec(T=T, combine="mean", format="topk", k=DEFAULT_K, num_classes=NUM_CLASSES,
                         lang_fingerprint="bench", feature_fingerprint="bench",
                         teachers=({"path": "synthetic", "sha256": "0" * 64},), shard_frames=2000)
        write_cache(d / "cache", spec, [lambda x: x @ W * 3], lambda u: np.array(feats[u]), counts)
        stored = sum(p.stat().st_size for a in ("ids", "probs", "tail") for p in (d / "cache" / a).glob("part-*.bin"))
        out["cache_bytes_per_frame"] = stored / sum(counts.values())
        assert out["cache_bytes_per_frame"] == TargetFormat("topk", NUM_CLASSES, DEFAULT_K).bytes_per_frame()
        out["dense_fp32_bytes_per_frame"] = float(dense_fp32_bytes_per_frame(NUM_CLASSES))

        fs, ls, utts = open_labelled_frames(d / "train" / "feats", d / "train" / "labels")
        cmvn = load_cmvn(d / "train")["global"]
        cached = open_cached_source(d / "cache", T=T, feats=fs, labels=ls, utts=utts)
        teachers = []
        for i in range(NUM_TEACHERS):
            torch.manual_seed(100 + i)
            m = build_model(cfg_model).eval()
            teachers.append(InferenceModel(m, cfg_model, cmvn, {}, Path("synthetic")))
        online = OnlineTeacherSource(teachers, fs, T, "mean", cached.format, resolve_precision("auto"))

        def epoch(soft, alpha: float) -> float:
            cfg = from_dict(TrainConfig, {"loss": {"soft_weight": alpha, "temperature": T}})
            torch.manual_seed(0)
            model = build_model(cfg_model)
            stepper = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
            loader = FrameLoader(fs, ls, utts, cfg_model.left_context, cfg_model.right_context, 512, cmvn,
                                 10**8, seed=0, prefetch=2, soft=soft)
            t0 = time.perf_counter()
            for b in loader.batches(0):
                stepper.step(b, 1e-4)
            return time.perf_counter() - t0

        epoch(None, 0.0)  # warm-up (oneDNN kernels, allocator)
        ratios, online_ratios = [], []
        for r in range(max(1, min(args.runs, 3))):
            hard = epoch(None, 0.0)
            dist = epoch(cached, 0.5)
            ratios.append(dist / hard)
            if r == 0:
                onl = epoch(online, 0.5)
                online_ratios.append(onl / dist)
            say(f"[bench] distill run {r + 1}: hard {hard:.2f} s, cached {dist:.2f} s"
                + (f", online ({NUM_TEACHERS} teachers) {onl:.2f} s" if r == 0 else ""))
        out["distill_epoch_over_hard_epoch"] = round(statistics.median(ratios), 3)
        out["online_epoch_over_cached_epoch"] = round(statistics.median(online_ratios), 3)
    return out
