"""Frame accuracy of one model or an ensemble (arithmetic or geometric mean of posteriors).

:func:`posteriors` is the reusable core (the decoder adds WER on top of it): each model
normalises the raw features as it was trained (noise floor, CMVN), sees its own context windows,
and the members' distributions are combined per frame.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, clear_done, is_done, mark_done
from asrkd.logs import progress
from asrkd.softtargets.combine import combine_logits
from asrkd.train.checkpoint import LoadedModel
from asrkd.train.data import context_windows, open_training_data

log = logging.getLogger("asrkd.evaluation.evaluate")

Combine = Literal["mean", "geometric"]


def _autocast(precision: str) -> Any:
    if precision == "bf16" or (precision == "auto" and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def member_log_posteriors(
    models: Sequence[LoadedModel], feats: np.ndarray, precision: str = "auto", batch_frames: int = 4096
) -> list[torch.Tensor]:
    """``feats: (frames, F)`` raw features of one utterance -> per model ``(frames, C)`` log-posteriors."""
    out = []
    for m in models:
        f = m.normalize(feats)
        x = torch.from_numpy(context_windows(f, m.config.left_context, m.config.right_context))
        parts = []
        with torch.no_grad(), _autocast(precision):
            for s in range(0, x.shape[0], batch_frames):
                parts.append(torch.log_softmax(m.module(x[s : s + batch_frames]).float(), dim=-1))
        out.append(torch.cat(parts) if parts else torch.zeros(0, m.config.num_classes))
    return out


def combine_posteriors(log_posts: Sequence[torch.Tensor], combine: Combine = "mean") -> torch.Tensor:
    """Members' ``(frames, C)`` log-posteriors -> the ensemble's ``(frames, C)`` posteriors.

    The same rules as the soft-target cache (mean of probabilities, or normalised geometric
    mean) at temperature 1: log-posteriors are valid logits, so one implementation serves both."""
    return combine_logits(list(log_posts), 1.0, combine)


def posteriors(models: Sequence[LoadedModel], feats: np.ndarray, combine: Combine = "mean",
               precision: str = "auto") -> np.ndarray:
    """``feats: (frames, F)`` raw features -> ``(frames, C)`` float32 posteriors of the model/ensemble."""
    return combine_posteriors(member_log_posteriors(models, feats, precision), combine).numpy()


def check_compatible(models: Sequence[LoadedModel], feats_fingerprint: str | None,
                     lang_fingerprint: str | None) -> None:
    """All models share the label inventory of the data, and saw features like these."""
    for m in models:
        fp = (m.meta.get("fingerprints") or {})
        if fp.get("lang") and lang_fingerprint and fp["lang"] != lang_fingerprint:
            raise AsrkdError(f"{m.path} was trained on another label inventory than the evaluation labels")
        if fp.get("feats") and feats_fingerprint and fp["feats"] != feats_fingerprint:
            raise AsrkdError(f"{m.path} was trained on features with another config than the evaluation data")
    if len({m.config.num_classes for m in models}) != 1:
        raise AsrkdError("the models have different numbers of classes")


def frame_accuracy(models: Sequence[LoadedModel], feats_dir: Path, labels_dir: Path,
                   combine: Combine = "mean", precision: str = "auto") -> dict[str, Any]:
    """Frame accuracy of each member and of the combination over the labelled utterances."""
    feats, labels, utts = open_training_data(feats_dir, labels_dir)
    check_compatible(models, feats.attrs.get("fingerprint"), labels.attrs.get("lang_fingerprint"))
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


FRAME_ACC_DONE = ".frame_acc.done"  # completion marker of the frame-accuracy step in an evaluation dir


def write_frame_accuracy(load_models: Callable[[], Sequence[LoadedModel]], feats_dir: Path, labels_dir: Path,
                         out_dir: Path, combine: Combine = "mean", precision: str = "auto",
                         force: bool = False) -> dict[str, Any] | None:
    """The frame-accuracy step of ``asrkd evaluate``: :func:`frame_accuracy` into
    ``out_dir/frame_acc.json``, then ``out_dir/.frame_acc.done``. A complete step is skipped
    (None is returned) unless ``force``; ``load_models`` is called only when there is work."""
    out_dir = Path(out_dir)
    if is_done(out_dir, FRAME_ACC_DONE) and not force:
        log.info("%s: frame accuracy is complete; skipping (use --force to redo)", out_dir)
        return None
    clear_done(out_dir, FRAME_ACC_DONE)
    models = load_models()
    result = frame_accuracy(models, feats_dir, labels_dir, combine, precision)
    atomic_write_json(out_dir / "frame_acc.json", result)
    mark_done(out_dir, {"frame_acc": result["frame_acc"]}, name=FRAME_ACC_DONE)
    log.info("frame accuracy %.4f over %d frames (%d model(s), %s); members: %s", result["frame_acc"],
             result["frames"], len(models), combine, " ".join(f"{a:.4f}" for a in result["member_frame_acc"]))
    return result
