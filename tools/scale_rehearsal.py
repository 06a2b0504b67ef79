#!/usr/bin/env python
"""A 100-hour rehearsal of the distillation data path on this machine (issue: GPUs and scale).

    python tools/scale_rehearsal.py [--frames 36000000] [--work DIR] [--keep]

Makes a training set of ``--frames`` frames (36M = 100 hours at 10 ms) of synthetic 40-dim
features stored as float16 (~72 B/frame + labels: ~3 GB) with ``--classes`` (2,000) frame
labels, two small teachers (``--layers`` x ``--hidden``, trained for one epoch on a 1% subset),
then runs the project's own commands as separate processes and measures each one as a whole
process (wall time, peak RSS from ``wait4``):

1. ``asrkd cache-targets`` with both teachers, top-k (``--k`` 20);
2. one student epoch reading that cache (a = 0.5, T = 2);
3. one hard-label epoch of the same model on the same frames.

Targets (issue 12/17): peak RSS <= 4 GB in every step, distillation epoch / hard epoch <= 1.10,
cache size <= 1.05 x frames x (4k + 4) B. The features are class means plus noise, so the
teachers learn something and their top-k lists are not uniform; timing does not depend on it.

Progress goes to stderr; the last line of stdout is one JSON object with every figure. The work
dir is removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import say  # noqa: E402

DIM = 40
UTT_FRAMES = (600, 1400)  # utterance lengths drawn uniformly: 6-14 s, ~1,000 frames on average
RSS_LIMIT_BYTES = 4 * 1024**3


def _write_set(d: Path, frames: int, classes: int, seed: int, means: np.ndarray) -> int:
    """A data dir ``d`` (feats float16, utt2num_frames, cmvn.json, labels) of about ``frames`` frames,
    written utterance by utterance (RAM independent of its size). Returns the frame count."""
    from asrkd.data.datadir import write_table
    from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
    from asrkd.framestore import PartWriter, finalize_store

    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    acc = CmvnAccumulator(DIM)
    total, i = 0, 0
    with PartWriter(d / "feats", "0", "float16", (DIM,)) as fw, PartWriter(d / "labels", "0", "int32", ()) as lw:
        while total < frames:
            n = int(min(rng.integers(*UTT_FRAMES), frames - total))
            # Labels in runs of ~8 frames (an HMM state lasts a few frames), features around the class mean.
            y = np.repeat(rng.integers(0, classes, n // 8 + 1), 8)[:n].astype(np.int32)
            x = (means[y] + rng.standard_normal((n, DIM), dtype=np.float32)).astype(np.float16)
            utt = f"spk{i % 500:03d}-u{i:06d}"
            fw.add(utt, x)
            lw.add(utt, y)
            if i % 20 == 0:  # CMVN statistics from a 5% sample: they only centre the inputs
                acc.add(utt.split("-")[0], x.astype(np.float32))
            counts[utt] = n
            total += n
            i += 1
            if i % 2000 == 0:
                say(f"[rehearsal] {d.name}: {total / 1e6:.1f}M / {frames / 1e6:.1f}M frames")
    finalize_store(d / "feats", "float16", (DIM,), {"fingerprint": "rehearsal"}, counts)
    finalize_store(d / "labels", "int32", (), {"num_classes": classes, "lang_fingerprint": "rehearsal",
                                               "feats_fingerprint": "rehearsal"}, counts)
    write_table(d / "utt2num_frames", {u: str(n) for u, n in counts.items()})
    write_cmvn(d, acc.to_json())
    return total


def _measure(name: str, cmd: list[str], log_path: Path) -> dict[str, float]:
    """Run ``cmd`` as a child process; its wall time and peak RSS (bytes, from ``wait4``)."""
    say(f"[rehearsal] {name}: {' '.join(cmd)}")
    t0 = time.monotonic()
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}); see {log_path}:\n" + log_path.read_text()[-3000:])
    rss = usage.ru_maxrss * 1024  # Linux reports kilobytes
    say(f"[rehearsal] {name}: {wall:.1f} s, peak RSS {rss / 1024**3:.2f} GiB")
    return {"seconds": round(wall, 1), "peak_rss_bytes": int(rss)}


def _train_conf(path: Path, args: argparse.Namespace) -> Path:
    conf = {
        "model": {"left_context": 5, "right_context": 5, "feat_dim": DIM, "num_layers": args.layers,
                  "hidden_dim": args.hidden},
        "max_epochs": 1, "early_stop_patience": 0,
        "optim": {"lr": 1e-3},
    }
    path.write_text(json.dumps(conf))  # JSON is YAML
    return path


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(args: argparse.Namespace) -> dict[str, Any]:
    asrkd = [sys.executable, "-m", "asrkd"]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="asrkd-rehearsal-", dir=args.tmp))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"frames_target": args.frames, "classes": args.classes, "k": args.k,
                           "model": f"{args.layers}x{args.hidden}, 11 x {DIM} input", "cpus": os.cpu_count()}
    try:
        means = np.random.default_rng(1).standard_normal((args.classes, DIM), dtype=np.float32)
        if not (work / "train" / "utt2num_frames").is_file():  # else: a kept --work dir's data, reused
            t0 = time.monotonic()
            _write_set(work / "train", args.frames, args.classes, 2, means)
            _write_set(work / "dev", max(20_000, args.frames // 1000), args.classes, 3, means)
            _write_set(work / "subset", max(50_000, args.frames // 100), args.classes, 4, means)
            out["make_data_s"] = round(time.monotonic() - t0, 1)
        out["frames"] = sum(int(line.split()[1]) for line in (work / "train" / "utt2num_frames").open())
        out["feats_bytes"] = _du(work / "train" / "feats")
        out["labels_bytes"] = _du(work / "train" / "labels")
        conf = _train_conf(work / "train.yaml", args)
        dev = ["--dev-feats", str(work / "dev"), "--dev-labels", str(work / "dev" / "labels")]
        teachers = []
        for s in range(2):
            exp = work / f"teacher{s}"
            _measure(f"teacher {s} (1% subset)", [*asrkd, "train", "--config", str(conf), "--feats", str(work / "subset"),
                                                  "--labels", str(work / "subset" / "labels"), *dev, "--seed", str(s),
                                                  "--out", str(exp)], work / f"teacher{s}.log")
            teachers += ["--model", str(exp / "final.pt")]
        frames = out["frames"]
        steps: dict[str, Any] = {}
        cache = work / "cache"
        steps["cache_targets"] = _measure("cache-targets", [*asrkd, "cache-targets", *teachers, "--feats", str(work / "train"),
                                                            "--format", "topk", "--k", str(args.k), "--T", "2",
                                                            "--out", str(cache)], work / "cache.log")
        out["cache_bytes"] = _du(cache)
        out["cache_bytes_limit"] = int(1.05 * frames * (4 * args.k + 4))
        steps["distill_epoch"] = _measure("student epoch (soft targets)", [
            *asrkd, "train", "--config", str(conf), "--feats", str(work / "train"), "--labels",
            str(work / "train" / "labels"), *dev, "--soft-targets", str(cache), "--set", "loss.soft_weight=0.5",
            "--set", "loss.temperature=2", "--out", str(work / "student")], work / "student.log")
        steps["hard_epoch"] = _measure("hard-label epoch", [
            *asrkd, "train", "--config", str(conf), "--feats", str(work / "train"), "--labels",
            str(work / "train" / "labels"), *dev, "--out", str(work / "hard")], work / "hard.log")
        for s in steps.values():
            s["frames_per_s"] = round(frames / s["seconds"])
        out["steps"] = steps
        out["distill_over_hard"] = round(steps["distill_epoch"]["seconds"] / steps["hard_epoch"]["seconds"], 3)
        out["peak_rss_max_bytes"] = max(s["peak_rss_bytes"] for s in steps.values())
        out["targets_met"] = {
            "peak_rss_le_4GB": out["peak_rss_max_bytes"] <= RSS_LIMIT_BYTES,
            "distill_over_hard_le_1.10": out["distill_over_hard"] <= 1.10,
            "cache_le_1.05x": out["cache_bytes"] <= out["cache_bytes_limit"],
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=36_000_000, help="training frames (36M = 100 hours)")
    p.add_argument("--classes", type=int, default=2000)
    p.add_argument("--k", type=int, default=20, help="top-k of the cache")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--work", default=None, help="work dir (default: a new temporary dir, removed afterwards)")
    p.add_argument("--tmp", default=None, help="where the temporary work dir goes (default: $TMPDIR or /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    args = p.parse_args(argv)
    print(json.dumps(run(args), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
