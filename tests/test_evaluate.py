"""Frame accuracy of a model or an ensemble, and the reusable posterior computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _train_data import FEATS_FP, LANG_FP, make_set
from asrkd.cli import main
from asrkd.features.cmvn import apply_cmvn, load_cmvn
from asrkd.errors import AsrkdError
from asrkd.evaluation.evaluate import frame_accuracy
from asrkd.inference.ensemble import ensemble_posteriors as posteriors
from asrkd.framestore import FrameStore
from asrkd.models import PRESETS, ModelConfig, build_model, model_config_dict
from asrkd.inference.model import load_model
from asrkd.inference.window import context_windows
from asrkd.train.checkpoint import save_checkpoint


def _save_model(path: Path, seed: int, cmvn: dict, lang: str = LANG_FP) -> Path:
    cfg = ModelConfig(**{**PRESETS["tiny"], "left_context": 1 + seed, "num_classes": 5})
    torch.manual_seed(seed)
    m = build_model(cfg)
    save_checkpoint(path, {"kind": "model", "model": m.state_dict(), "model_config": model_config_dict(cfg),
                           "train_config": {}, "cmvn": cmvn, "fingerprints": {"feats": FEATS_FP, "lang": lang},
                           "metrics": []})
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    make_set(root / "test", 6, seed=2)
    cmvn = load_cmvn(root / "test")["global"]
    paths = [_save_model(root / f"m{i}.pt", i, cmvn if i else None) for i in range(3)]
    return root, paths


def _reference_probs(m, feats: np.ndarray) -> torch.Tensor:
    f = apply_cmvn(feats, m.cmvn) if m.cmvn is not None else feats
    x = torch.from_numpy(context_windows(f, m.config.left_context, m.config.right_context))
    with torch.no_grad():
        return torch.softmax(m.module(x), -1)


def test_posteriors_combine_members(setup):
    root, paths = setup
    models = [load_model(p) for p in paths]
    feats = np.asarray(FrameStore(root / "test" / "feats")["spk0-utt0000"])
    probs = [_reference_probs(m, feats) for m in models]
    mean = posteriors(models, feats, "mean", precision="fp32")
    geo = posteriors(models, feats, "geometric", precision="fp32")
    assert mean.shape == geo.shape == (feats.shape[0], 5)
    np.testing.assert_allclose(mean, torch.stack(probs).mean(0).numpy(), rtol=1e-5, atol=1e-6)
    g = torch.stack(probs).log().mean(0).exp()
    np.testing.assert_allclose(geo, (g / g.sum(-1, keepdim=True)).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(geo.sum(-1), 1.0, rtol=1e-5)
    one = posteriors(models[:1], feats, "geometric", precision="fp32")
    np.testing.assert_allclose(one, probs[0].numpy(), rtol=1e-4, atol=1e-6)


def test_frame_accuracy_counts_argmax_hits(setup):
    root, paths = setup
    models = [load_model(p) for p in paths[:2]]
    r = frame_accuracy(models, root / "test", root / "test/labels/ali", "mean", precision="fp32")
    feats, labels = FrameStore(root / "test/feats"), FrameStore(root / "test/labels/ali")
    hits = [0, 0]
    ens = 0
    for u in feats.keys():
        ps = [_reference_probs(m, np.asarray(feats[u])) for m in models]
        y = torch.from_numpy(np.asarray(labels[u]).astype(np.int64))
        for i, p in enumerate(ps):
            hits[i] += int((p.argmax(-1) == y).sum())
        ens += int((torch.stack(ps).mean(0).argmax(-1) == y).sum())
    assert r["frames"] == feats.total_frames and r["utts"] == len(feats)
    assert r["member_frame_acc"] == pytest.approx([h / r["frames"] for h in hits])
    assert r["frame_acc"] == pytest.approx(ens / r["frames"])


def test_evaluate_command_and_inventory_check(setup, tmp_path: Path):
    root, paths = setup
    out = tmp_path / "eval_test"
    rc = main(["evaluate", "--model", str(paths[0]), "--model", str(paths[1]), "--combine", "geometric",
               "--feats", str(root / "test"), "--labels", str(root / "test/labels/ali"), "--out", str(out)])
    assert rc == 0
    r = json.loads((out / "frame_acc.json").read_text())
    assert r["combine"] == "geometric" and len(r["member_frame_acc"]) == 2 and 0 <= r["frame_acc"] <= 1
    # Complete: a rerun skips without loading a model (a missing checkpoint is never opened);
    # --force redoes it.
    done = out / ".frame_acc.done"
    mtime = done.stat().st_mtime_ns
    args = ["evaluate", "--model", str(tmp_path / "gone.pt"), "--feats", str(root / "test"),
            "--labels", str(root / "test/labels/ali"), "--out", str(out)]
    assert main(args) == 0 and done.stat().st_mtime_ns == mtime
    assert main(["evaluate", "--model", str(paths[0]), *args[3:], "--force"]) == 0
    assert done.stat().st_mtime_ns > mtime and json.loads((out / "frame_acc.json").read_text())["combine"] == "mean"
    bad = _save_model(tmp_path / "bad.pt", 0, None, lang="another-inventory")
    with pytest.raises(AsrkdError, match="label inventory"):
        frame_accuracy([load_model(bad)], root / "test", root / "test/labels/ali")
