"""``train`` benchmark: the training step's speed on this machine (the compute core).

Keys (measured in one run, Adam, all cores, 2000 output classes, 2048 frames, at the precision
training picks on this CPU, ``train_precision``: bf16 autocast where the CPU has native bf16,
else fp32):

- ``bf16_matmul_tflops`` (or ``fp32_matmul_tflops``): best rate of matmuls of the hinton2015
  layer shapes at that precision (forward, input-gradient and weight-gradient layouts), best of
  several repeats - the machine's ceiling.
  Both oneDNN's and, on AMX CPUs, the step's own AMX GEMM (:mod:`asrkd.kernels.amx_gemm`) are timed.
- ``train_frames_per_s_hinton2015`` / ``train_frames_per_s_cpu``: frames per second of the real
  loader + step (:class:`asrkd.train.data.FrameLoader`, :class:`asrkd.train.step.Stepper`) on a
  synthetic frame store, best window of ``--runs`` timed windows. For the DNN with Adam in bf16
  on CPU the Stepper takes the hand-fused path (:mod:`asrkd.kernels.fast_dnn`); the time includes
  the whole step (forward, loss, backward, clipping, Adam).
- ``train_mfu_hinton2015``: model FLOPs/s during training (forward + backward = 3 x forward
  matmul FLOPs) of the best window / ``bf16_matmul_tflops`` (conservative: both are bests, and
  the peak is re-measured before and after every training window). Other helpers share the
  machine and its load swings within seconds, so ``train_mfu_hinton2015_paired`` also reports
  the best ratio of a window to the peak measured around that same window.
- ``loader_overhead_frac`` (hinton2015) / ``loader_overhead_frac_cpu``: share of step time spent
  waiting for the next batch.
- ``load_avg_1min_start`` / ``_end``: the machine's load average around the run (2 cores are
  shared; a load above ~2 means the figures are pessimistic).

``python tools/bench_train.py [--threads N]`` prints where the step's time goes instead
(:func:`profile_step`: each matmul by kind and shape, each fused kernel, the rest).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any
from pathlib import Path

from bench_common import say

BATCH = 2048
CLASSES = 2000


def _matmul_peak(repeats: int = 8, precision: str = "bf16") -> float:
    import torch

    from asrkd.kernels import amx_gemm
    shapes = [(BATCH, 26 * 40, 2560), (BATCH, 2560, 2560), (BATCH, 2560, CLASSES)]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    best = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, dtype=dtype)
        b = torch.randn(k, n, dtype=dtype)
        bt = b.t().contiguous()
        fns = [lambda: a @ b, lambda: a @ bt.t()]
        if amx_gemm.available() and precision == "bf16":  # the step's own AMX GEMM (asrkd.kernels.fast_dnn) counts too
            fns += [lambda: amx_gemm.matmul(a, b), lambda: amx_gemm.matmul(a, bt, b_transposed=True)]
        for f in fns:
            f()
            for _ in range(repeats):
                t = time.perf_counter()
                f()
                f()
                best = max(best, 2 * 2 * m * k * n / (time.perf_counter() - t) / 1e12)
    return best


def _make_store(root: Path, num_utts: int = 60, frames: int = 600) -> None:
    import numpy as np

    from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
    from asrkd.framestore import write_store

    rng = np.random.default_rng(0)
    feats = [(f"u{i:04d}", rng.normal(size=(frames, 40)).astype(np.float32)) for i in range(num_utts)]
    labels = [(u, rng.integers(0, CLASSES, len(f)).astype(np.int32)) for u, f in feats]
    acc = CmvnAccumulator(40)
    for u, f in feats:
        acc.add("s", f)
    write_store(root / "feats", feats, "float32", (40,), attrs={"fingerprint": "bench"})
    write_cmvn(root, acc.to_json())
    write_store(root / "labels", labels, "int32", (), attrs={"num_classes": CLASSES, "feats_fingerprint": "bench"})


def _train_speed(root: Path, preset: str, steps: int, windows: int,
                 precision: str = "bf16") -> tuple[float, float, float, float]:
    """(frames/s, loader wait fraction) of the best timed window of ``steps`` steps, the best
    matmul peak measured around the windows, and the best window-to-its-peak ratio."""
    import torch

    from asrkd.features.cmvn import load_cmvn
    from asrkd.models import build_model, with_num_classes
    from asrkd.train.config import load_train_config
    from asrkd.data.labelled import open_labelled_frames
    from asrkd.train.data import FrameLoader
    from asrkd.train.step import Stepper, make_optimizer

    cfg = load_train_config(None, [f"model.preset={preset}", f"data.batch_size={BATCH}", f"precision={precision}"])
    mc = with_num_classes(cfg.model, CLASSES)
    torch.manual_seed(0)
    model = build_model(mc)
    stepper = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
    feats, labels, utts = open_labelled_frames(root, root / "labels")
    loader = FrameLoader(feats, labels, utts, mc.left_context, mc.right_context, BATCH,
                         load_cmvn(root)["global"], cfg.data.chunk_frames, 0, prefetch=cfg.data.prefetch,
                         chunk_bytes=cfg.data.chunk_bytes)

    def batches():
        epoch = 0
        while True:
            yield from loader.batches(epoch)
            epoch += 1

    it = batches()
    for _ in range(2):  # warm-up: allocator, oneDNN primitive cache
        stepper.step(next(it), 1e-4)
    best_fps, best_wait, max_peak, best_ratio = 0.0, 1.0, 0.0, 0.0
    for _ in range(windows):
        peak = _matmul_peak(repeats=2, precision=precision)
        wait = 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            tw = time.perf_counter()
            b = next(it)
            wait += time.perf_counter() - tw
            stepper.step(b, 1e-4)
        total = time.perf_counter() - t0
        peak = max(peak, _matmul_peak(repeats=2, precision=precision))
        if steps * BATCH / total > best_fps:
            best_fps, best_wait = steps * BATCH / total, wait / total
        max_peak = max(max_peak, peak)
        best_ratio = max(best_ratio, steps * BATCH / total / peak)
    return best_fps, best_wait, max_peak, best_ratio


def run(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from asrkd.models import ModelConfig, PRESETS, forward_flops_per_frame

    # All the cores this process may run on (= os.cpu_count() on the whole machine; under
    # ``taskset -c 0`` one core, for the single-core ratio on a shared machine).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(cores)
    import numba

    numba.set_num_threads(min(cores, numba.config.NUMBA_NUM_THREADS))  # the fused kernels' threads
    from asrkd.inference.device import resolve_precision

    # The precision training picks here (precision: auto): bf16 on CPUs with native bf16, else
    # fp32; the peak and the MFU are at that precision (an emulated bf16 peak means nothing).
    prec = resolve_precision("auto")
    out: dict[str, Any] = {"load_avg_1min_start": os.getloadavg()[0], "train_precision": prec}
    say(f"[bench] train: {prec} matmul peak ...")
    peak = _matmul_peak(precision=prec)
    runs = max(2, min(getattr(args, "runs", 3), 3))
    with tempfile.TemporaryDirectory(prefix="asrkd-bench-train-") as tmp:
        root = Path(tmp)
        _make_store(root)
        say("[bench] train: hinton2015 steps ...")
        fps, wait, p, ratio = _train_speed(root, "hinton2015", steps=5 if prec == "bf16" else 2, windows=runs,
                                           precision=prec)
        peak = max(peak, p)
        out["train_frames_per_s_hinton2015"] = fps
        out["loader_overhead_frac"] = wait
        flops = forward_flops_per_frame(ModelConfig(**PRESETS["hinton2015"], num_classes=CLASSES))
        out["train_mfu_hinton2015_paired"] = 3 * flops * ratio / 1e12
        say("[bench] train: cpu preset steps ...")
        fps, wait, p, _ = _train_speed(root, "cpu", steps=30 if prec == "bf16" else 10, windows=runs, precision=prec)
        peak = max(peak, p)
        out[f"{prec}_matmul_tflops"] = peak
        out["train_mfu_hinton2015"] = 3 * flops * out["train_frames_per_s_hinton2015"] / (peak * 1e12)
        out["train_frames_per_s_cpu"] = fps
        out["loader_overhead_frac_cpu"] = wait
    out["load_avg_1min_end"] = os.getloadavg()[0]
    return out


def profile_step(preset: str = "hinton2015", steps: int = 4) -> dict[str, float]:
    """Milliseconds per step of each part of the training step (random data, hard labels):
    every matmul by kind and shape, every fused kernel, and the rest ("other": Python, small
    torch ops). Run pinned (``taskset -c 0``) with 1 thread to compare a matmul's in-step rate
    with its standalone rate on a shared machine."""
    import collections
    import math

    import torch

    from asrkd.models import ModelConfig, PRESETS, build_model
    from asrkd.kernels import bf16_kernels
    from asrkd.train.config import load_train_config
    from asrkd.train.data import Batch
    from asrkd.train.step import Stepper, make_optimizer

    cfg = load_train_config(None, [f"model.preset={preset}", f"data.batch_size={BATCH}", f"precision={precision}"])
    mc = ModelConfig(**PRESETS[preset], num_classes=CLASSES)
    torch.manual_seed(0)
    model = build_model(mc)
    stepper = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
    batch = Batch(x=torch.randn(BATCH, mc.window, mc.feat_dim), labels=torch.randint(0, CLASSES, (BATCH,)),
                  utts=torch.zeros(BATCH, dtype=torch.long), frames=torch.zeros(BATCH, dtype=torch.long))
    spent: dict[str, float] = collections.defaultdict(float)
    originals = []

    def timed(owner, name, key):  # type: ignore[no-untyped-def]
        fn = getattr(owner, name)
        originals.append((owner, name, fn))

        def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = fn(*a, **kw)
            spent[key(a)] += time.perf_counter() - t
            return out
        setattr(owner, name, wrapper)

    for name in ("relu_backward_t", "transpose", "sumsq_bf16", "softmax_xent", "adam", "adam_f32"):
        timed(bf16_kernels, name, lambda a, n=name: n)
    timed(torch, "mm", lambda a: f"mm {'wgrad' if a[0].shape[1] == BATCH else 'dgrad'} "
                                 f"{a[0].shape[0]}x{a[0].shape[1]}x{a[1].shape[1]}")
    timed(torch.ops.mkldnn, "_linear_pointwise", lambda a: f"fwd {a[0].shape[0]}x{a[0].shape[1]}x{a[1].shape[0]}")
    from asrkd.kernels import amx_gemm
    timed(amx_gemm, "matmul", lambda a: f"amx {'wgrad ' if a[0].shape[1] == BATCH else ''}{a[0].shape[0]}x{a[0].shape[1]}x"
                                        f"{a[1].shape[1] if a[1].shape[0] == a[0].shape[1] else a[1].shape[0]}")
    timed(amx_gemm, "dgrad_relu_backward",  # the input gradient fused with the ReLU backward
          lambda a: f"amx dgrad+relu_bwd {a[0].shape[0]}x{a[0].shape[1]}x{a[1].shape[0]}")
    try:
        for _ in range(2):
            stepper.step(batch, 1e-4)
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(steps):
            stepper.step(batch, 1e-4)
        total = time.perf_counter() - t0
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)
    out = {k: v / steps * 1e3 for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    out["other"] = (total - math.fsum(spent.values())) / steps * 1e3
    out["step"] = total / steps * 1e3
    return out


if __name__ == "__main__":
    import json

    p = argparse.ArgumentParser(description="Per-part profile of one training step (ms per step).")
    p.add_argument("--preset", default="hinton2015")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    print(json.dumps({k: round(v, 2) for k, v in profile_step(a.preset, a.steps).items()}, indent=1))
