#!/usr/bin/env python
"""What the paper's run would cost, from figures measured on this machine (docs/scale.md).

    python tools/scale_costing.py --rehearsal REHEARSAL.json --bench BENCH.json [--mfu X]

``REHEARSAL.json``: the last line of ``tools/scale_rehearsal.py`` (cache bytes per frame, peak
RSS, the data path's frames/s). ``BENCH.json``: the last line of ``tools/bench.py --only train``
(``train_frames_per_s_hinton2015``, ``train_mfu_hinton2015``). Prints markdown: the run's
sizes, the soft-target cache at k = 10 / 20 / 50, teacher-inference and student-training
GPU-hours on one H100-class GPU at the MFU measured here (or ``--mfu``), and how many GPUs
a storage or network bandwidth can feed before it, not the GPUs, sets the pace.

Every number is arithmetic on the inputs and the constants below, each of which is stated in
the output; nothing here is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asrkd.models import PRESETS, ModelConfig, forward_flops_per_frame  # noqa: E402

FRAMES = 700_000_000  # the paper: about 2,000 hours at 10 ms
CLASSES = 14_000  # tied triphone states
TEACHERS = 10
H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM, dense bf16 tensor-core peak (no sparsity)
FEATURE_BYTES = 40 * 4  # 40 log-mel, float32 as asrkd's feature stores hold them
LABEL_BYTES = 4
BANDWIDTHS_GB_S = {"one NVMe SSD (3 GB/s)": 3.0, "10 GbE (1.25 GB/s)": 1.25, "100 Gb/s InfiniBand (12.5 GB/s)": 12.5}
BATCH_PER_GPU = 512  # asrkd's data.batch_size (frames per step per rank)


def _cache_bytes_per_frame(k: int) -> int:
    """Top-k cache: int16 ids (14k classes fit) + fp16 probabilities + an fp32 tail."""
    return 2 * k + 2 * k + 4


def _mfu_source(bench: dict) -> str:
    if bench.get("_mfu_given"):
        return "given with --mfu"
    prec = bench.get("train_precision", "bf16")
    return f"measured here: train_mfu_hinton2015, the training step against this CPU's own best {prec} matmul rate"


def costing(rehearsal: dict, bench: dict, mfu: float | None) -> str:
    cfg = ModelConfig(**PRESETS["hinton2015"], num_classes=CLASSES)
    fwd = forward_flops_per_frame(cfg)
    params = fwd // 2
    mfu = float(mfu if mfu is not None else bench["train_mfu_hinton2015"])
    gpu_flops = H100_BF16_DENSE_TFLOPS * 1e12 * mfu
    infer_fps = gpu_flops / fwd  # one teacher, frames/s on one GPU
    train_fps = gpu_flops / (3 * fwd)  # forward + backward
    lines = [
        "| input | value |", "|---|---|",
        f"| frames | {FRAMES / 1e6:.0f}M (2,000 h) |",
        f"| model | hinton2015 preset: 26 x 40 input, 8 x 2560 ReLU, {CLASSES:,} classes: {params / 1e6:.1f}M "
        f"weights, {fwd / 1e6:.0f} MFLOP per frame forward |",
        f"| teachers | {TEACHERS} |",
        f"| GPU peak | {H100_BF16_DENSE_TFLOPS:.0f} TFLOP/s (H100 SXM, dense bf16) |",
        f"| MFU assumed | {mfu:.3f} ({_mfu_source(bench)}) |",
        f"| this machine, hinton2015 training | {bench.get('train_frames_per_s_hinton2015', float('nan')):,.0f} "
        "frames/s |",
        "",
        "**Soft-target cache** (top-k; the rehearsal measured "
        f"{rehearsal['cache_bytes'] / rehearsal['frames']:.2f} B/frame at k = {rehearsal['k']} against "
        f"{_cache_bytes_per_frame(rehearsal['k'])} B of arrays: the rest is indexes and metadata)",
        "", "| k | bytes/frame | cache for 700M frames |", "|---|---|---|",
    ]
    overhead = rehearsal["cache_bytes"] / rehearsal["frames"] / _cache_bytes_per_frame(rehearsal["k"])
    for k in (10, 20, 50):
        b = _cache_bytes_per_frame(k)
        lines.append(f"| {k} | {b} | {FRAMES * b * overhead / 1e9:.0f} GB |")
    infer_h = TEACHERS * FRAMES / infer_fps / 3600
    epoch_h = FRAMES / train_fps / 3600
    lines += [
        "", "**GPU time** (one H100-class GPU at the MFU above; N GPUs under torchrun divide it while the data "
        "path keeps up)", "",
        "| step | frames/s per GPU | GPU-hours | on 8 GPUs (h) |", "|---|---|---|---|",
        f"| teacher inference, {TEACHERS} teachers x 700M frames | {infer_fps:,.0f} per teacher | {infer_h:.2f} | "
        f"{infer_h / 8:.3f} |",
        f"| student training, one epoch | {train_fps:,.0f} | {epoch_h:.2f} | {epoch_h / 8:.3f} |",
    ]
    cache_b = _cache_bytes_per_frame(20) * overhead
    read_b = FEATURE_BYTES + LABEL_BYTES + cache_b
    need_gb = train_fps * read_b / 1e9
    grad_gb_step = 2 * params * 4 / 1e9  # ring all-reduce: ~2 x the fp32 gradient per step and GPU
    steps_s = train_fps / BATCH_PER_GPU
    lines += [
        "", "**Where the GPUs stop being the limit** (student training, k = 20)", "",
        f"- Each GPU reads {read_b:.0f} B per frame (features {FEATURE_BYTES}, label {LABEL_BYTES}, cache "
        f"{cache_b:.0f}): {need_gb:.2f} GB/s at {train_fps:,.0f} frames/s.",
    ]
    for name, bw in BANDWIDTHS_GB_S.items():
        lines.append(f"- {name} feeds {bw / need_gb:.1f} GPUs.")
    lines += [
        f"- DDP all-reduces {params * 4 / 1e9:.2f} GB of fp32 gradients per step: at {BATCH_PER_GPU} frames per "
        f"step and GPU that is {steps_s:,.0f} steps/s, ~{grad_gb_step * steps_s:,.0f} GB/s per GPU of ring "
        "traffic, beyond any interconnect; the batch per GPU must grow (x16 = 8,192 frames: "
        f"~{grad_gb_step * steps_s / 16:,.0f} GB/s, NVLink-class within a node) or gradients travel in bf16.",
        f"- Teacher inference writes {cache_b:.0f} B of cache per frame and reads {FEATURE_BYTES} B: "
        f"{infer_fps / TEACHERS * (cache_b + FEATURE_BYTES) / 1e9:.2f} GB/s per GPU running all {TEACHERS} "
        "teachers, which one disk sustains for many GPUs.",
        "",
        "**This machine's data path** (tools/scale_rehearsal.py, "
        f"{rehearsal['frames'] / 1e6:.0f}M frames, {rehearsal['classes']:,} classes, {rehearsal['model']} model)", "",
        "| step | seconds | frames/s | peak RSS |", "|---|---|---|---|",
    ]
    for name, s in rehearsal["steps"].items():
        lines.append(f"| {name} | {s['seconds']:,.0f} | {s['frames_per_s']:,} | {s['peak_rss_bytes'] / 2**30:.2f} GiB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rehearsal", type=Path, required=True, help="file whose last line is scale_rehearsal.py's JSON")
    p.add_argument("--bench", type=Path, required=True, help="file whose last line is bench.py --only train's JSON")
    p.add_argument("--mfu", type=float, default=None, help="MFU to assume instead of the measured one")
    args = p.parse_args(argv)
    last = lambda path: json.loads(path.read_text().strip().splitlines()[-1])  # noqa: E731
    bench = last(args.bench)
    if args.mfu is not None:
        bench["_mfu_given"] = True
    print(costing(last(args.rehearsal), bench, args.mfu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
