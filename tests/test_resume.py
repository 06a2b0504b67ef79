"""Kill -9 at arbitrary points, rerun, and reach exactly the uninterrupted run's result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from _train_data import make_set
from asrkd.inference.model import load_checkpoint
from asrkd.train.config import load_train_config
from asrkd.train.loop import TrainData, train

SETTINGS = ["model.preset=tiny", "model.dropout=0.2", "data.batch_size=32", "max_epochs=3",
            "checkpoint_every_steps=4", "num_threads=1", "early_stop_patience=0", "data.chunk_frames=400"]
TIMING = {"frames_per_s", "loader_wait_frac", "seconds"}


def _cmd(d: Path, out: Path) -> list[str]:
    args = [sys.executable, "-m", "asrkd", "train", "--feats", str(d / "train"),
            "--labels", str(d / "train/labels/ali"), "--dev-feats", str(d / "dev"),
            "--dev-labels", str(d / "dev/labels/ali"), "--out", str(out)]
    for s in SETTINGS:
        args += ["--set", s]
    return args


def _kill_after_checkpoint(cmd: list[str], out: Path, wait_s: float) -> None:
    """Start a run, SIGKILL it ``wait_s`` after its resume checkpoint next changes."""
    last = out / "last.pt"
    before = last.stat().st_mtime_ns if last.exists() else None
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        if last.exists() and last.stat().st_mtime_ns != before:
            break
        time.sleep(0.005)
    time.sleep(wait_s)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()


def test_killed_run_resumes_to_the_same_result(tmp_path: Path):
    d = tmp_path / "data"
    make_set(d / "train", 30, seed=0, noise=2.5)
    make_set(d / "dev", 8, seed=1, noise=2.5)
    ref_out = tmp_path / "ref"
    train(load_train_config(None, SETTINGS), TrainData(d / "train", d / "train/labels/ali", d / "dev",
                                                       d / "dev/labels/ali"), ref_out)
    out = tmp_path / "run"
    cmd = _cmd(d, out)
    _kill_after_checkpoint(cmd, out, 0.0)  # right after a (mid-epoch) checkpoint
    assert (out / "last.pt").exists() and not (out / ".done").exists()
    _kill_after_checkpoint(cmd, out, 0.3)  # somewhere later: mid-step, mid-write, mid-epoch-end
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert (out / ".done").exists()
    ref, got = load_checkpoint(ref_out / "final.pt"), load_checkpoint(out / "final.pt")
    assert ref["model"].keys() == got["model"].keys()
    for k in ref["model"]:
        assert torch.equal(ref["model"][k], got["model"][k]), k
    strip = lambda ms: [{k: v for k, v in m.items() if k not in TIMING} for m in ms]  # noqa: E731
    assert strip(got["metrics"]) == strip(ref["metrics"])
    assert len(got["metrics"]) == 3
