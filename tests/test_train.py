"""Data loading (windows, CMVN, coverage, chunking, determinism, rank split) and the loop."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from _train_data import make_set
from asrkd.features.cmvn import apply_cmvn, load_cmvn
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore, write_store
from asrkd.train.checkpoint import load_checkpoint, load_model
from asrkd.train.config import load_train_config
from asrkd.train.data import FrameLoader, context_windows, open_training_data
from asrkd.train.loop import TrainData, train

TINY = ["model.preset=tiny", "data.batch_size=64", "max_epochs=3", "data.prefetch=0", "num_threads=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_set(root / "train", 40, seed=0, noise=2.5)
    make_set(root / "dev", 12, seed=1, noise=2.5)
    return root


def _loader(d: Path, **kw) -> FrameLoader:
    feats, labels, utts = open_training_data(d / "train", d / "train" / "labels" / "ali")
    args = dict(left=2, right=3, batch_size=50, cmvn=load_cmvn(d / "train")["global"],
                chunk_frames=10**9, seed=0, prefetch=0)
    args.update(kw)
    return FrameLoader(feats, labels, utts, **args)


def _epoch(loader: FrameLoader, epoch: int = 0, start: int = 0) -> list:
    return list(loader.batches(epoch, start))


def test_context_windows_repeat_edge_frames():
    f = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    w = context_windows(f, 2, 1)
    assert w.shape == (5, 4, 2)
    assert w[0, :, 0].tolist() == [0, 0, 0, 1]
    assert w[4, :, 0].tolist() == [2, 3, 4, 4]
    assert w[2, :, 0].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("chunk_frames", [10**9, 300])
def test_batches_are_windows_of_normalised_frames_covering_the_epoch(data: Path, chunk_frames: int):
    loader = _loader(data, chunk_frames=chunk_frames)
    feats = FrameStore(data / "train" / "feats")
    labels = FrameStore(data / "train" / "labels" / "ali")
    cmvn = load_cmvn(data / "train")["global"]
    seen = []
    for b in _epoch(loader):
        assert b.x.shape[1:] == (6, 40) and b.size <= 50
        for k in range(0, b.size, 7):  # spot-check rows against a spliced reference
            utt = loader.utts[int(b.utts[k])]
            t = int(b.frames[k])
            ref = context_windows(apply_cmvn(np.asarray(feats[utt]), cmvn), 2, 3)[t]
            np.testing.assert_allclose(b.x[k].numpy(), ref, rtol=1e-6, atol=1e-6)
            assert int(b.labels[k]) == int(labels[utt][t])
        seen += list(zip(b.utts.tolist(), b.frames.tolist()))
    assert len(seen) == len(set(seen)) == loader.total_frames  # every frame exactly once
    assert len(_epoch(loader)) == loader.steps_per_epoch(0)


def test_chunks_bound_ram_and_shuffle_across_utterances(data: Path):
    loader = _loader(data, chunk_frames=300)
    assert not loader.in_memory
    chunks = loader.chunks(0)
    assert len(chunks) > 3
    for c in chunks:
        assert loader.counts[c].sum() <= 300
    b = _epoch(loader)[0]
    assert len(set(b.utts.tolist())) > 3  # frames of many utterances in one batch
    assert [c.tolist() for c in loader.chunks(1)] != [c.tolist() for c in chunks]


def test_order_is_deterministic_per_seed_and_epoch(data: Path):
    a = [b.frames.tolist() + b.utts.tolist() for b in _epoch(_loader(data))]
    b = [b.frames.tolist() + b.utts.tolist() for b in _epoch(_loader(data, prefetch=2))]
    c = [b.frames.tolist() + b.utts.tolist() for b in _epoch(_loader(data, seed=1))]
    d = [b.frames.tolist() + b.utts.tolist() for b in _epoch(_loader(data), epoch=1)]
    assert a == b and a != c and a != d


@pytest.mark.parametrize("chunk_frames", [10**9, 300])
def test_resume_position_and_rank_split(data: Path, chunk_frames: int):
    full = _epoch(_loader(data, chunk_frames=chunk_frames))
    tail = _epoch(_loader(data, chunk_frames=chunk_frames), start=5)
    assert [b.frames.tolist() for b in tail] == [b.frames.tolist() for b in full[5:]]
    r0 = _loader(data, chunk_frames=chunk_frames, batch_size=25, rank=0, world=2)
    r1 = _loader(data, chunk_frames=chunk_frames, batch_size=25, rank=1, world=2)
    assert r0.steps_per_epoch(0) == r1.steps_per_epoch(0)
    keys = [set(zip(b.utts.tolist(), b.frames.tolist())) for r in (r0, r1) for b in _epoch(r)]
    k0 = set().union(*keys[: r0.steps_per_epoch(0)])
    k1 = set().union(*keys[r0.steps_per_epoch(0):])
    assert not (k0 & k1)  # disjoint parts of the epoch
    assert len(k0 | k1) >= r0.total_frames - 2 * r0.steps_per_epoch(0)  # only sub-world tails dropped


def test_training_learns_and_writes_its_experiment_dir(data: Path, tmp_path: Path):
    cfg = load_train_config(None, TINY + ["max_epochs=4", "model.hidden_dim=64"])
    out = tmp_path / "exp"
    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    metrics = train(cfg, d, out)
    assert len(metrics) == 4
    assert metrics[-1]["dev_frame_acc"] > 0.6 > 1 / 5  # far above chance (5 classes)
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    for k in ("train_loss", "train_frame_acc", "dev_loss", "dev_frame_acc", "frames_per_s", "lr"):
        assert k in metrics[0]
    for f in ("config.yaml", "command", "log", "metrics.json", "final.pt", "best.pt", "last.pt", ".done"):
        assert (out / f).exists(), f
    saved = json.loads((out / "metrics.json").read_text())
    best = max(range(4), key=lambda i: metrics[i]["dev_frame_acc"])
    assert saved["best_epoch"] == best
    ck = load_checkpoint(out / "final.pt")
    assert ck["kind"] == "model" and ck["cmvn"]["count"] > 0 and ck["fingerprints"]["lang"]
    m = load_model(out / "final.pt")
    assert m.config.num_classes == 5 and m.config.window == 5
    # A completed run is skipped; a different config in the same dir is refused.
    assert train(cfg, d, out) == metrics
    (out / ".done").unlink()
    with pytest.raises(AsrkdError, match="different config"):
        train(load_train_config(None, TINY + ["seed=5"]), d, out)


def test_fast_step_setting_and_the_step_path_in_log_and_metrics(data: Path, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture):
    """fast_step=auto trains a DNN in bf16 on CPU with the fused step, off with autograd; the log and
    metrics.json (the run and each epoch) say which step and GEMM ran, and either setting resumes
    the other's run."""
    import torch
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("no CPU bf16: the fused step does not apply")
    from asrkd.kernels import amx_gemm

    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    base = TINY + ["precision=bf16", "max_epochs=1"]
    caplog.set_level(logging.INFO, logger="asrkd")
    for setting, path in (("auto", "fused-bf16"), ("off", "autograd")):
        out = tmp_path / setting
        metrics = train(load_train_config(None, base + [f"fast_step={setting}"]), d, out)
        saved = json.loads((out / "metrics.json").read_text())
        # the tiny model's layers are far narrower than the AMX GEMM's AMX_MIN_K: oneDNN on any CPU
        gemm = "onednn" if path == "fused-bf16" else "n/a"
        assert (saved["step_path"], saved["gemm"]) == (path, gemm)
        assert [(m["step_path"], m["gemm"]) for m in metrics] == [(path, gemm)]
        assert f"training step: {path} (fast_step={setting}), GEMM: {gemm}" in caplog.text
        assert metrics[0]["dev_frame_acc"] > 0.3
    assert not amx_gemm.available() or amx_gemm.status() == "built"
    (tmp_path / "auto" / ".done").unlink()  # resume the fused run's last.pt with the other path
    assert len(train(load_train_config(None, base + ["fast_step=off"]), d, tmp_path / "auto")) == 1
    with pytest.raises(AsrkdError, match="fast_step"):
        load_train_config(None, TINY + ["fast_step=on"])


def test_init_from_starts_at_the_checkpoint_weights(data: Path, tmp_path: Path):
    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    base = TINY + ["model.hidden_dim=64"]
    src = train(load_train_config(None, base + ["max_epochs=4"]), d, tmp_path / "src")
    best_acc = max(m["dev_frame_acc"] for m in src)
    # lr 0: the weights never move, so dev accuracy is the checkpoint's (final.pt = the best epoch);
    # a different seed and dropout change nothing the weights depend on
    frozen = base + ["max_epochs=1", "optim.lr=0.0", "schedule.min_lr=0.0", "seed=7", "model.dropout=0.3"]
    got = train(load_train_config(None, frozen + [f"init_from={tmp_path / 'src' / 'final.pt'}"]), d, tmp_path / "a")
    assert got[0]["dev_frame_acc"] == pytest.approx(best_acc, abs=1e-9)
    fresh = train(load_train_config(None, frozen), d, tmp_path / "b")
    assert fresh[0]["dev_frame_acc"] < best_acc - 0.2  # a random initialisation is far from it
    with pytest.raises(AsrkdError, match="differs from this run"):
        train(load_train_config(None, TINY + ["model.hidden_dim=32", f"init_from={tmp_path / 'src' / 'final.pt'}"]),
              d, tmp_path / "c")
    with pytest.raises(AsrkdError, match="no checkpoint"):
        train(load_train_config(None, base + [f"init_from={tmp_path / 'nothing.pt'}"]), d, tmp_path / "e")


def test_early_stopping_and_plateau_halving(data: Path, tmp_path: Path):
    # lr 0 never improves dev accuracy: training stops once patience runs out.
    cfg = load_train_config(None, TINY + ["max_epochs=10", "optim.lr=0.0", "schedule.min_lr=0.0",
                                          "early_stop_patience=2"])
    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    metrics = train(cfg, d, tmp_path / "exp")
    assert len(metrics) == 3
    # A threshold no epoch can reach halves the lr after every epoch but the first
    # (metrics report the rate each epoch trained with).
    cfg = load_train_config(None, TINY + ["optim.lr=0.01", "schedule.halve_threshold=1.0", "early_stop_patience=0"])
    metrics = train(cfg, d, tmp_path / "exp2")
    assert [m["lr"] for m in metrics] == pytest.approx([0.01, 0.01, 0.005])


def test_nonfinite_loss_guard_aborts(data: Path, tmp_path: Path):
    bad = tmp_path / "bad"
    make_set(bad, 10, seed=3)
    store = FrameStore(bad / "feats")
    items = [(u, np.full_like(np.asarray(store[u]), np.nan)) for u in store.keys()]
    import shutil

    shutil.rmtree(bad / "feats")
    write_store(bad / "feats", items, "float32", (40,), attrs=store.attrs)
    cfg = load_train_config(None, TINY + ["data.cmvn=none", "max_nonfinite=3"])
    d = TrainData(bad, bad / "labels/ali", data / "dev", data / "dev/labels/ali")
    with pytest.raises(AsrkdError, match="non-finite"):
        train(cfg, d, tmp_path / "exp")


def test_mismatched_inputs_are_refused(data: Path, tmp_path: Path):
    other = tmp_path / "other"
    make_set(other, 5, num_classes=7, seed=4)
    cfg = load_train_config(None, TINY)
    d = TrainData(data / "train", data / "train/labels/ali", other, other / "labels/ali")
    with pytest.raises(AsrkdError, match="label inventory"):
        train(cfg, d, tmp_path / "exp")
    with pytest.raises(AsrkdError, match="frame counts"):
        open_training_data(data / "dev", data / "train" / "labels" / "ali")  # same utt ids, other lengths


def test_fp16_amp_with_loss_scaling_trains(data: Path, tmp_path: Path):
    # The GPU's fp16 AMP path (GradScaler), exercised on CPU.
    cfg = load_train_config(None, TINY + ["precision=fp16", "model.hidden_dim=64", "max_epochs=2"])
    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    metrics = train(cfg, d, tmp_path / "exp")
    assert metrics[-1]["dev_frame_acc"] > 0.4 and metrics[-1]["nonfinite_skipped"] == 0
    assert load_checkpoint(tmp_path / "exp" / "last.pt")["stepper"]["scaler"]["scale"] > 0


def test_numba_kernels_use_torchs_thread_count(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """During training numba's pool is capped at torch's thread count (num_threads), and the
    caller's numba setting comes back afterwards."""
    import numba
    import torch

    from asrkd.train import loop

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: nothing to cap")
    seen = []
    monkeypatch.setattr(loop, "_train", lambda *a: seen.append((torch.get_num_threads(), numba.get_num_threads())) or [])
    before = numba.get_num_threads()
    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    train(load_train_config(None, TINY + ["num_threads=1"]), d, tmp_path / "exp")
    assert seen == [(1, 1)]
    assert numba.get_num_threads() == before
