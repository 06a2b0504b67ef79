"""The same command under torchrun: 2 gloo processes train on disjoint halves and checkpoint.

On a GPU machine ``ASRKD_TEST_DDP_DEVICE=cuda ASRKD_TEST_DDP_NPROC=<GPUs>`` runs it with nccl, one
process per GPU (tools/gpu_check.sh does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from _train_data import make_set
from asrkd.framestore import FrameStore
from asrkd.inference.model import load_checkpoint, load_model


def test_torchrun_two_gloo_processes(tmp_path: Path):
    device = os.environ.get("ASRKD_TEST_DDP_DEVICE", "cpu")  # cpu: gloo; cuda: nccl
    nproc = int(os.environ.get("ASRKD_TEST_DDP_NPROC", "2"))
    d = tmp_path / "data"
    make_set(d / "train", 30, seed=0, noise=2.5)
    make_set(d / "dev", 8, seed=1, noise=2.5)
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "asrkd", "train", "--feats", str(d / "train"), "--labels", str(d / "train/labels/ali"),
           "--dev-feats", str(d / "dev"), "--dev-labels", str(d / "dev/labels/ali"), "--out", str(out),
           "--device", device]
    for s in ["model.preset=tiny", "data.batch_size=32", "max_epochs=2", "num_threads=1",
              "checkpoint_every_steps=5", "optim.lr=0.003"]:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={"OMP_NUM_THREADS": "1", **os.environ})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / ".done").exists()
    metrics = json.loads((out / "metrics.json").read_text())["epochs"]
    total = FrameStore(d / "train" / "feats").total_frames
    steps = -(-total // (32 * nproc))
    for m in metrics:
        # The ranks together cover the epoch once (only tails shorter than nproc frames are dropped).
        assert total - (nproc - 1) <= m["train_frames"] <= total
        assert m["dev_frames"] == FrameStore(d / "dev" / "feats").total_frames
    assert metrics[-1]["dev_frame_acc"] > 0.4
    last = load_checkpoint(out / "last.pt")
    assert len(last["rng"]["torch"]) == nproc and last["position"]["global_step"] == 2 * steps
    m = load_model(out / "final.pt")
    assert m.module(torch.zeros(3, m.config.window, 40)).shape == (3, 5)
