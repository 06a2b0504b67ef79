"""Frame accuracy of one model or an ensemble (arithmetic or geometric mean of posteriors).

Each model normalises the raw features as it was trained (noise floor, CMVN) and sees its own
context windows (:mod:`asrkd.inference.forward`); the members' distributions are combined per
frame (:mod:`asrkd.inference.ensemble`, the rules the soft-target cache uses, at T = 1).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from asrkd.data.labelled import open_labelled_frames
from asrkd.fileio import atomic_write_json, clear_done, mark_done
from asrkd.inference.ensemble import combine_posteriors, member_log_posteriors
from asrkd.inference.spec import CombineRule
from asrkd.inference.model import InferenceModel, check_models
from asrkd.evaluation.status import FRAME_ACC_DONE, frame_accuracy_complete
from asrkd.logs import progress
from asrkd.distributed import DistInfo, all_reduce_sum

log = logging.getLogger("asrkd.evaluation.evaluate")


def frame_accuracy(models: Sequence[InferenceModel], feats_dir: Path, labels_dir: Path,
                   combine: CombineRule = "mean", precision: str = "auto",
                   dist_info: DistInfo = DistInfo()) -> dict[str, Any]:
    """Frame accuracy of each member and of the combination over the labelled utterances.
    Under torchrun (``dist_info``) each rank scores every ``world``-th utterance and the counts
    are summed over the ranks: every rank returns the whole set's figures."""
    feats, labels, utts = open_labelled_frames(feats_dir, labels_dir)
    check_models(models, feats.attrs.get("fingerprint"), labels.attrs.get("lang_fingerprint"))
    members = np.zeros(len(models), dtype=np.int64)
    correct, frames, nll = 0, 0, 0.0
    mine = utts[dist_info.rank::dist_info.world]
    for u in progress(mine, total=len(mine), desc="evaluate"):
        y = torch.from_numpy(np.asarray(labels[u]).astype(np.int64))
        lps = member_log_posteriors(models, feats[u], precision)
        for i, lp in enumerate(lps):
            members[i] += int((lp.argmax(-1) == y).sum())
        post = combine_posteriors(lps, combine)
        correct += int((post.argmax(-1) == y).sum())
        nll -= float(torch.log(post.gather(1, y[:, None]).clamp_min(1e-30)).sum())
        frames += len(y)
    # Counts are exact in float64 up to 2^53 frames; the NLL's sum order differs from one
    # process's (a last-digit difference at most).
    sums = all_reduce_sum([correct, frames, nll, *members.tolist()], dist_info)
    correct, frames, nll = int(sums[0]), int(sums[1]), sums[2]
    members = np.asarray(sums[3:], dtype=np.int64)
    return {
        "frame_acc": correct / max(1, frames),
        "cross_entropy": nll / max(1, frames),
        "frames": frames,
        "utts": len(utts),
        "combine": combine,
        "models": [str(m.path) for m in models],
        "member_frame_acc": [float(c) / max(1, frames) for c in members],
    }


def write_frame_accuracy(load_models: Callable[[], Sequence[InferenceModel]], feats_dir: Path, labels_dir: Path,
                         out_dir: Path, combine: CombineRule = "mean", precision: str = "auto",
                         force: bool = False, dist_info: DistInfo = DistInfo()) -> dict[str, Any] | None:
    """The frame-accuracy step of ``asrkd evaluate``: :func:`frame_accuracy` into
    ``out_dir/frame_acc.json``, then ``out_dir/.frame_acc.done``. A complete step is skipped
    (None is returned) unless ``force``; ``load_models`` is called only when there is work.
    Under torchrun every rank scores its share and rank 0 writes."""
    out_dir = Path(out_dir)
    if frame_accuracy_complete(out_dir, force):
        return None
    if dist_info.is_main:
        clear_done(out_dir, FRAME_ACC_DONE)
    models = load_models()
    result = frame_accuracy(models, feats_dir, labels_dir, combine, precision, dist_info)
    if not dist_info.is_main:
        return result
    atomic_write_json(out_dir / "frame_acc.json", result)
    mark_done(out_dir, {"frame_acc": result["frame_acc"]}, name=FRAME_ACC_DONE)
    log.info("frame accuracy %.4f over %d frames (%d model(s), %s); members: %s", result["frame_acc"],
             result["frames"], len(models), combine, " ".join(f"{a:.4f}" for a in result["member_frame_acc"]))
    return result
