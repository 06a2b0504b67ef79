"""Phonetic context of every frame of a monophone alignment: ``(left unit, unit, right unit, state)``.

A context-dependent model (:mod:`asrkd.lang.tree`) needs, for every aligned frame, the units of
the neighbouring *unit segments*: the segment before and the segment after the one the frame is
in. Context runs across word boundaries, silence is a context like any other unit, and an
utterance's first/last segment has :data:`asrkd.lang.tree.BOUNDARY` on its outer side.

Segments are recovered from the class sequence alone, as :mod:`asrkd.align.ctm` does: a new
segment starts where the unit changes or where the state index goes down (every HMM is left to
right), so two consecutive segments of the same unit (``l l`` in "ll") stay two segments. (A
one-state unit repeated back to back cannot be told apart from its self-loop; the two are one
segment.)
"""

from __future__ import annotations

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.lang.inventory import Lang
from asrkd.lang.tree import BOUNDARY


def segment_starts(units: np.ndarray, states: np.ndarray) -> np.ndarray:
    """``units, states: (frames,)`` per frame -> ``(frames,)`` bool, True where a unit segment begins."""
    new = np.ones(units.shape[0], dtype=bool)
    new[1:] = (units[1:] != units[:-1]) | (states[1:] < states[:-1])
    return new


def frame_contexts(classes: np.ndarray, lang: Lang) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``classes: (frames,)`` monophone class ids of one utterance -> ``(left, unit, right, state)``,
    each ``(frames,)`` int32; ``left``/``right`` are unit ids or ``BOUNDARY``."""
    c = np.asarray(classes, dtype=np.int64)
    if c.size and (int(c.min()) < 0 or int(c.max()) >= lang.num_classes):
        raise AsrkdError(f"class id out of range for {lang.directory} ({lang.num_classes} classes)")
    unit = lang.class_unit[c].astype(np.int32)
    state = lang.class_state[c].astype(np.int32)
    if c.size == 0:
        e = np.zeros(0, dtype=np.int32)
        return e, e.copy(), e.copy(), e.copy()
    new = segment_starts(unit, state)
    seg_unit = unit[new]  # (S,) unit of each segment
    seg_of_frame = np.cumsum(new) - 1  # (frames,) segment index of each frame
    bound = np.array([BOUNDARY], dtype=np.int32)
    seg_left = np.concatenate([bound, seg_unit[:-1]])
    seg_right = np.concatenate([seg_unit[1:], bound])
    return seg_left[seg_of_frame], unit, seg_right[seg_of_frame], state
