"""Small data dirs, label stores and teacher checkpoints for the soft-target tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
from asrkd.data.datadir import write_table
from asrkd.framestore import write_store
from asrkd.models import ModelConfig, build_model, model_config_dict
from asrkd.train.checkpoint import save_checkpoint

FEAT_DIM = 8
FEATS_FP = "f" * 64
LANG_FP = "l" * 64


def make_data_dir(d: Path, num_utts: int = 24, num_classes: int = 30, seed: int = 0) -> dict[str, int]:
    """data dir with feats/ (float32 (T, 8)), utt2num_frames, cmvn.json and labels/ali.
    Returns {utt: T}."""
    rng = np.random.default_rng(seed)
    feats = {}
    for i in range(num_utts):
        T = int(rng.integers(8, 60))
        feats[f"spk{i % 3}-utt{i:03d}"] = (rng.standard_normal((T, FEAT_DIM)) * 2 + 1).astype(np.float32)
    counts = {u: a.shape[0] for u, a in feats.items()}
    write_store(d / "feats", sorted(feats.items()), "float32", (FEAT_DIM,),
                attrs={"feature_config": {"num_mel_bins": FEAT_DIM}, "fingerprint": FEATS_FP},
                expected_frames=counts)
    write_table(d / "utt2num_frames", {u: str(n) for u, n in counts.items()})
    acc = CmvnAccumulator(FEAT_DIM)
    for u, a in feats.items():
        acc.add(u.split("-")[0], a)
    write_cmvn(d, acc.to_json())
    labels = {u: rng.integers(0, num_classes, n).astype(np.int32) for u, n in counts.items()}
    write_store(d / "labels" / "ali", sorted(labels.items()), "int32", (),
                attrs={"num_classes": num_classes, "lang_fingerprint": LANG_FP, "feats_fingerprint": FEATS_FP,
                       "source": "test"}, expected_frames=counts)
    return counts


def make_teacher(path: Path, cmvn: dict, num_classes: int = 30, seed: int = 0) -> torch.nn.Module:
    """A tiny DNN teacher checkpoint (random weights, sharpened so posteriors are peaked)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(left_context=2, right_context=1, feat_dim=FEAT_DIM, num_layers=1, hidden_dim=16,
                      num_classes=num_classes)
    model = build_model(cfg)
    with torch.no_grad():
        model.weights[-1].mul_(6.0)
    save_checkpoint(path, {
        "kind": "model", "model": model.state_dict(), "model_config": model_config_dict(cfg),
        "cmvn": cmvn, "fingerprints": {"feats": FEATS_FP, "lang": LANG_FP}, "metrics": [], "train_config": {},
    })
    model.eval()
    return model


def teacher_args(d: Path, n: int = 2) -> list[str]:
    """``--model`` arguments of ``n`` tiny teachers written to ``d/t<i>.pt`` (CMVN of ``d/train``)."""
    from asrkd.features.cmvn import load_cmvn

    cmvn = load_cmvn(d / "train")["global"]
    paths = [d / f"t{i}.pt" for i in range(n)]
    for i, p in enumerate(paths):
        make_teacher(p, cmvn, seed=i)
    return sum((["--model", str(p)] for p in paths), [])
