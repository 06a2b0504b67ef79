"""A model's input normalisation (asrkd.features.inputnorm): the noise floor, and that training,
evaluation and teachers apply the same floor + CMVN recorded in the checkpoint."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from _kd_fixtures import make_data_dir, make_teacher
from _train_data import make_set
from asrkd.features.cmvn import apply_cmvn, load_cmvn
from asrkd.evaluation.evaluate import frame_accuracy
from asrkd.inference.ensemble import member_log_posteriors
from asrkd.framestore import FrameStore, write_store
from asrkd.features.inputnorm import apply_floor, estimate_floor, normalize_input, training_input_norm
from asrkd.softtargets.source import OnlineTeacherSource
from asrkd.inference.forward import Scorer
from asrkd.inference.model import load_checkpoint, load_model
from asrkd.inference.window import context_windows
from asrkd.train.checkpoint import save_checkpoint
from asrkd.train.config import load_train_config
from asrkd.train.loop import TrainData, train

TINY = ["model.preset=tiny", "data.batch_size=64", "max_epochs=2", "data.prefetch=0", "num_threads=1",
        "precision=fp32"]


def _quieten(data_dir: Path, every: int = 3, shift: float = -8.0) -> None:
    """Rewrite ``data_dir/feats`` with every ``every``-th utterance far quieter (log-mel + shift),
    as a recording with a much lower background would be."""
    store = FrameStore(data_dir / "feats")
    items = [(u, np.asarray(store[u]) + (shift if i % every == 0 else 0.0)) for i, u in enumerate(sorted(store.keys()))]
    write_store(data_dir / "feats", items, "float32", store.shape, dict(store.attrs))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputnorm")
    make_set(root / "train", 30, seed=0, noise=2.0)
    make_set(root / "dev", 12, seed=1, noise=2.0)
    _quieten(root / "dev")
    return root


def test_floor_lifts_quiet_bins_and_keeps_loud_ones():
    floor = np.array([0.0, 2.0], np.float32)
    x = np.array([[-20.0, -20.0], [0.0, 2.0], [12.0, 14.0]], np.float32)
    y = apply_floor(x, floor)
    assert y.dtype == np.float32
    # log(e^x + e^f) lies between max(x, f) and max(x, f) + log 2 ...
    hi = np.maximum(x, floor)
    assert np.all(y >= hi - 1e-6) and np.all(y <= hi + math.log(2) + 1e-6)
    np.testing.assert_allclose(y[0], floor, atol=1e-6)  # far below: onto the floor
    np.testing.assert_allclose(y[1], floor + math.log(2), atol=1e-6)  # at the floor: + log 2
    np.testing.assert_allclose(y[2], x[2], atol=1e-4)  # far above: unchanged


def test_floor_estimate_is_the_percentile_and_off_is_unchanged(tmp_path: Path):
    rng = np.random.default_rng(0)
    items = [(f"u{i}", rng.normal(0, 1, (50, 3)).astype(np.float32)) for i in range(4)]
    write_store(tmp_path / "feats", items, "float32", (3,), {})
    store = FrameStore(tmp_path / "feats")
    allf = np.concatenate([a for _, a in items])
    np.testing.assert_allclose(estimate_floor(store, store.keys(), 5.0), np.percentile(allf, 5, axis=0), rtol=1e-6)
    assert estimate_floor(store, store.keys(), 0.0) is None
    # Off: exactly the CMVN alone (bit for bit), and nothing at all without CMVN.
    stats = {"count": 200, "sum": allf.sum(0).tolist(), "sumsq": (allf.astype(np.float64) ** 2).sum(0).tolist()}
    np.testing.assert_array_equal(normalize_input(allf, stats, None), apply_cmvn(allf, stats))
    np.testing.assert_array_equal(normalize_input(allf, None, None), allf)


def test_training_input_norm_off_is_the_cmvn_file_and_on_is_normalised(data: Path):
    store = FrameStore(data / "dev" / "feats")
    cmvn, floor = training_input_norm(store, "global", 0.0)
    assert floor is None and cmvn == load_cmvn(data / "dev")["global"]
    cmvn, floor = training_input_norm(store, "global", 5.0)
    assert floor.shape == (40,)
    x = np.concatenate([normalize_input(store[u], cmvn, floor) for u in store.keys()])
    # CMVN recomputed after the floor: the model's input is still zero-mean, unit-variance.
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-3)
    assert training_input_norm(store, "none", 5.0)[0] is None


@pytest.mark.parametrize("percentile", [0.0, 5.0])
def test_checkpoint_round_trip_applies_the_training_normalisation(data: Path, tmp_path: Path, percentile: float):
    """The dev metrics computed inside training (FrameLoader/eval_batches) are reproduced by
    evaluating the saved model (asrkd.evaluation.evaluate), with the floor on or off."""
    cfg = load_train_config(None, TINY + [f"data.noise_floor_percentile={percentile}"])
    d = TrainData(data / "train", data / "train/labels/ali", data / "dev", data / "dev/labels/ali")
    out = tmp_path / "exp"
    metrics = train(cfg, d, out)
    ck = load_checkpoint(out / "final.pt")
    store = FrameStore(data / "train" / "feats")
    if percentile == 0:
        assert ck["noise_floor"] is None and ck["cmvn"] == load_cmvn(data / "train")["global"]
    else:
        ref_cmvn, ref_floor = training_input_norm(store, "global", percentile)
        np.testing.assert_array_equal(np.asarray(ck["noise_floor"], np.float32), ref_floor)
        assert ck["cmvn"] == ref_cmvn
    m = load_model(out / "final.pt")
    best = max(metrics, key=lambda r: r["dev_frame_acc"])
    ev = frame_accuracy([m], data / "dev", data / "dev/labels/ali", precision="fp32")
    assert ev["frames"] == best["dev_frames"]
    assert abs(ev["frame_acc"] - best["dev_frame_acc"]) * ev["frames"] <= 1  # at most a tie flipped
    assert ev["cross_entropy"] == pytest.approx(best["dev_loss"], rel=1e-4)
    if percentile > 0:
        # The check has teeth: the same model without its floor sees other inputs on quiet files.
        bare = dataclasses.replace(m, noise_floor=None)
        quiet = sorted(FrameStore(data / "dev" / "feats").keys())[0]
        f = FrameStore(data / "dev" / "feats")[quiet]
        a, b = member_log_posteriors([m, bare], f, "fp32")
        assert (a - b).abs().max() > 0.1
        assert frame_accuracy([bare], data / "dev", data / "dev/labels/ali",
                              precision="fp32")["cross_entropy"] != pytest.approx(ev["cross_entropy"], rel=1e-3)


def test_teachers_apply_the_checkpoint_floor_and_old_checkpoints_load(tmp_path: Path):
    make_data_dir(tmp_path / "train")
    cmvn = load_cmvn(tmp_path / "train")["global"]
    old = tmp_path / "old.pt"
    module = make_teacher(old, cmvn)  # a checkpoint from before the floor: no noise_floor key
    assert "noise_floor" not in load_checkpoint(old)
    assert load_model(old).noise_floor is None
    store = FrameStore(tmp_path / "train" / "feats")
    utt = sorted(store.keys())[0]
    f = np.array(store[utt])
    np.testing.assert_array_equal(load_model(old).normalize(f), apply_cmvn(f, cmvn))

    floor = estimate_floor(store, store.keys(), 20.0)
    new = tmp_path / "new.pt"
    save_checkpoint(new, {**{k: v for k, v in load_checkpoint(old).items() if k not in ("format", "version")},
                          "noise_floor": [float(v) for v in floor]})
    t = load_model(new)
    np.testing.assert_array_equal(t.noise_floor, floor)
    x = torch.from_numpy(context_windows(normalize_input(f, cmvn, floor), t.config.left_context,
                                         t.config.right_context))
    with torch.no_grad():
        ref = module(x)
        got = Scorer(t)(torch.from_numpy(f))
        assert (got - Scorer(dataclasses.replace(t, noise_floor=None))(torch.from_numpy(f))).abs().max() > 1e-3
    torch.testing.assert_close(got, ref)
    # The loader-side online teachers normalise the same way.
    src = OnlineTeacherSource([t], store, 1.0, "mean")
    chunk = src.load([utt])
    rows = np.arange(f.shape[0])
    torch.testing.assert_close(src.gather(chunk, rows).probs, torch.softmax(ref, -1), rtol=1e-5, atol=1e-6)
