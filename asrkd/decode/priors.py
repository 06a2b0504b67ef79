"""Class priors for hybrid decoding: relative frequencies of the training frame labels.

A DNN estimates p(class | frame); the HMM needs p(frame | class), which is that divided by
p(class) up to a per-frame constant. The prior is the class frequency in the training labels,
with add-``floor`` smoothing so a class never seen in training has a finite log prior.

A class never seen in training must not be *decoded* though: its network output was only ever
pushed down, and dividing by its tiny floored prior would boost it by ``log(frames)`` nats per
frame, so the search would string unseen units (e.g. the single-letter sentencepiece pieces that
no training transcript uses) into the output. Kaldi's nnet1 gives such classes a huge log prior for
the same reason; here :func:`unseen_units` lists their units, which the decoding graph leaves out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore


def class_counts(labels_dir: Path, num_classes: int) -> np.ndarray:
    """Frames per class ``(C,)`` int64 over a label store (int32 class id per frame)."""
    store = FrameStore(Path(labels_dir))
    n = store.attrs.get("num_classes")
    if n is not None and int(n) != num_classes:
        raise AsrkdError(f"{labels_dir}: labels have {n} classes, the model {num_classes}")
    counts = np.zeros(num_classes, dtype=np.int64)
    for _, labels in store.items():
        lab = np.asarray(labels)
        if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
            raise AsrkdError(f"{labels_dir}: label outside 0..{num_classes - 1}")
        counts += np.bincount(lab, minlength=num_classes)
    if counts.sum() == 0:
        raise AsrkdError(f"{labels_dir}: no labelled frames to estimate priors from")
    return counts


def log_priors(counts: np.ndarray, floor: float = 1.0) -> np.ndarray:
    """``counts: (C,)`` -> smoothed natural-log priors ``(C,)`` float32 (sum of exp = 1)."""
    c = np.asarray(counts, dtype=np.float64) + floor
    return np.log(c / c.sum()).astype(np.float32)


def unseen_units(lang, counts: np.ndarray) -> list[int]:  # noqa: ANN001
    """Units (other than silence) with a class that has no frame in ``counts: (C,)``."""
    counts = np.asarray(counts)
    if counts.shape != (lang.num_classes,):
        raise AsrkdError(f"class counts have shape {counts.shape}, the lang {lang.num_classes} classes")
    out = []
    for u, n in enumerate(lang.unit_num_states):
        c = lang.unit_offset[u] + np.arange(int(n))
        if u != lang.silence_unit and (counts[c] == 0).any():
            out.append(u)
    return out
