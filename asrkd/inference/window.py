"""The frame-context window a hybrid acoustic model sees: frames ``t - left .. t + right``.

Frames beyond an utterance's edges repeat its first/last frame (training, the soft-target cache,
evaluation and decoding all do this, so a model sees at inference what it saw in training).
Windows are gathered with one numpy fancy index; no spliced copy of the corpus is made.
"""

from __future__ import annotations

import numpy as np


def window_offsets(left: int, right: int) -> np.ndarray:
    """``(W,)`` frame offsets of a context window: -left .. +right (W = left + 1 + right)."""
    return np.arange(-left, right + 1, dtype=np.int64)


def window_index(rows: np.ndarray, start: np.ndarray, end: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Row indices ``(N, W)`` of the windows centred on ``rows: (N,)``; ``start/end: (N,)`` are
    the first and one-past-last rows of each row's utterance (edges repeat the end frames)."""
    idx = rows[:, None] + offsets[None, :]
    return np.clip(idx, start[:, None], end[:, None] - 1)


def context_windows(feats: np.ndarray, left: int, right: int) -> np.ndarray:
    """All windows of one utterance: ``feats: (frames, F)`` -> ``(frames, left + 1 + right, F)``."""
    n_frames = feats.shape[0]
    rows = np.arange(n_frames, dtype=np.int64)
    idx = window_index(rows, np.zeros(n_frames, np.int64), np.full(n_frames, n_frames, np.int64),
                       window_offsets(left, right))
    return feats[idx]
