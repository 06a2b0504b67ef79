"""Frame accuracy of one model or an ensemble (arithmetic or geometric mean of posteriors).

Each model normalises the raw features as it was trained (noise floor, CMVN) and sees its own
context windows (:mod:`asrkd.inference.forward`); the members' distributions are combined per
frame (:mod:`asrkd.inference.ensemble`, the rules the soft-target cache uses, at T = 1).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from asrkd.data.labelled import open_labelled_frames
from asrkd.inference.ensemble import CombineRule, combine_posteriors, member_log_posteriors
from asrkd.inference.model import InferenceModel, check_models
from asrkd.logs import progress

log = logging.getLogger("asrkd.evaluation.evaluate")


def frame_accuracy(models: Sequence[InferenceModel], feats_dir: Path, labels_dir: Path,
                   combine: CombineRule = "mean", precision: str = "auto") -> dict[str, Any]:
    """Frame accuracy of each member and of the combination over the labelled utterances."""
    feats, labels, utts = open_labelled_frames(feats_dir, labels_dir)
    check_models(models, feats.attrs.get("fingerprint"), labels.attrs.get("lang_fingerprint"))
    members = np.zeros(len(models), dtype=np.int64)
    correct, frames, nll = 0, 0, 0.0
    for u in progress(utts, total=len(utts), desc="evaluate"):
        y = torch.from_numpy(np.asarray(labels[u]).astype(np.int64))
        lps = member_log_posteriors(models, feats[u], precision)
        for i, lp in enumerate(lps):
            members[i] += int((lp.argmax(-1) == y).sum())
        post = combine_posteriors(lps, combine)
        correct += int((post.argmax(-1) == y).sum())
        nll -= float(torch.log(post.gather(1, y[:, None]).clamp_min(1e-30)).sum())
        frames += len(y)
    return {
        "frame_acc": correct / max(1, frames),
        "cross_entropy": nll / max(1, frames),
        "frames": frames,
        "utts": len(utts),
        "combine": combine,
        "models": [str(m.path) for m in models],
        "member_frame_acc": [float(c) / max(1, frames) for c in members],
    }
