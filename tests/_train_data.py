"""Tiny synthetic training sets for the training/evaluation tests (learnable in seconds).

Each utterance is a sequence of constant-label segments; a frame's features are its class's
mean vector plus noise, so a small DNN reaches a high frame accuracy quickly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
from asrkd.framestore import write_store

FEATS_FP = "feats-fp-test"
LANG_FP = "lang-fp-test"


def make_set(data_dir: Path, num_utts: int, num_classes: int = 5, seed: int = 0, dim: int = 40,
             noise: float = 1.0) -> Path:
    """Write ``data_dir/feats``, ``data_dir/cmvn.json`` and ``data_dir/labels/ali``."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).normal(0, 1, (num_classes, dim)).astype(np.float32) * 2 + 3
    feats, labels = [], []
    acc = CmvnAccumulator(dim)
    for i in range(num_utts):
        T = int(rng.integers(20, 60))
        y = np.repeat(rng.integers(0, num_classes, T // 5 + 1), 5)[:T].astype(np.int32)
        x = means[y] + rng.normal(0, noise, (T, dim)).astype(np.float32)
        utt = f"spk{i % 3}-utt{i:04d}"
        feats.append((utt, x))
        labels.append((utt, y))
        acc.add(f"spk{i % 3}", x)
    write_store(data_dir / "feats", feats, "float32", (dim,),
                attrs={"feature_config": {"kind": "test"}, "fingerprint": FEATS_FP})
    write_cmvn(data_dir, acc.to_json())
    write_store(data_dir / "labels" / "ali", labels, "int32", (),
                attrs={"num_classes": num_classes, "lang_fingerprint": LANG_FP,
                       "feats_fingerprint": FEATS_FP, "source": "synthetic"})
    return data_dir
