"""Exported student (``asrkd export``): agreement with the checkpoint and CPU speed per thread.

A student of the recipes' ``cpu`` preset (26 x 40 input, 4 x 512 ReLU) with 2,000 classes, with
CMVN and a noise floor, exported as TorchScript and ONNX; 3,000 frames of log-mel-like features.
Keys: ``export_max_abs_diff_{torchscript,onnx}`` (log-posteriors against the checkpoint's fp32
forward) and ``export_frames_per_s_1thread_{torchscript,onnx,checkpoint}`` (one utterance of
3,000 frames per call, one thread, median of ``--runs``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_common import say

FRAMES = 3000
CLASSES = 2000


def _timed(fn, x: np.ndarray, runs: int) -> float:
    fn(x)  # warm-up (graph optimisation, allocations)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return x.shape[0] / statistics.median(times)


def run(args: argparse.Namespace) -> dict[str, float]:
    from asrkd.inference.export import export_model, load_exported
    from asrkd.inference.forward import frame_log_posteriors
    from asrkd.inference.model import load_model
    from asrkd.models import PRESETS, ModelConfig, build_model, model_config_dict
    from asrkd.train.checkpoint import save_checkpoint

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    feats = (rng.standard_normal((FRAMES, 40)) * 2 + 5).astype(np.float32)
    cfg = ModelConfig(**PRESETS["cpu"], num_classes=CLASSES)
    torch.manual_seed(0)
    net = build_model(cfg)
    cmvn = {"count": FRAMES, "sum": feats.sum(0).tolist(), "sumsq": (feats.astype(np.float64) ** 2).sum(0).tolist()}
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "student.pt"
        save_checkpoint(ckpt, {"kind": "model", "model": net.state_dict(), "model_config": model_config_dict(cfg),
                               "cmvn": cmvn, "noise_floor": np.percentile(feats, 10, axis=0).tolist(),
                               "fingerprints": {}, "metrics": [], "train_config": {}})
        model = load_model(ckpt)
        ref = frame_log_posteriors(model, feats, "fp32").numpy()
        out["export_frames_per_s_1thread_checkpoint"] = _timed(
            lambda x: frame_log_posteriors(model, x, "fp32"), feats, args.runs)
        for fmt, suffix in (("torchscript", ".ts"), ("onnx", ".onnx")):
            path = export_model(model, Path(tmp) / f"student{suffix}", fmt)
            exported = load_exported(path, num_threads=1)
            out[f"export_max_abs_diff_{fmt}"] = float(np.abs(exported(feats) - ref).max())
            out[f"export_frames_per_s_1thread_{fmt}"] = _timed(exported, feats, args.runs)
            say(f"[bench] export {fmt}: max |diff| {out[f'export_max_abs_diff_{fmt}']:.2e}, "
                f"{out[f'export_frames_per_s_1thread_{fmt}']:.0f} frames/s on one thread")
    return out
