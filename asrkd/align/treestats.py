"""Tree statistics (Kaldi's ``acc-tree-stats``): for every seen context ``(left unit, unit, right
unit, state)`` of a monophone alignment, the frame count and the single-Gaussian sufficient
statistics (sum and sum of squares, diagonal) of the aligner's features.

The decision tree (:mod:`asrkd.align.treebuild`) only needs these sums: the log-likelihood of
any set of contexts under one diagonal Gaussian follows from its pooled statistics
(:func:`gauss_loglik`). Contexts come from :func:`asrkd.align.contexts.frame_contexts`: across
word boundaries, silence included, :data:`asrkd.lang.tree.BOUNDARY` at utterance edges.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numba
import numpy as np

from asrkd.align.contexts import frame_contexts
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_bytes
from asrkd.lang.inventory import Lang

log = logging.getLogger("asrkd.align.treestats")

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class TreeStats:
    """Statistics of ``K`` seen contexts, sorted by (unit, state, left, right).

    ``contexts (K, 4)`` int32 columns (left, unit, right, state); ``count (K,)``, ``sum (K, D)``,
    ``sumsq (K, D)`` float64 (frames, sum of features, sum of squared features)."""

    contexts: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    sumsq: np.ndarray

    @property
    def dim(self) -> int:
        return self.sum.shape[1]

    @property
    def left(self) -> np.ndarray:
        return self.contexts[:, 0]

    @property
    def unit(self) -> np.ndarray:
        return self.contexts[:, 1]

    @property
    def right(self) -> np.ndarray:
        return self.contexts[:, 2]

    @property
    def state(self) -> np.ndarray:
        return self.contexts[:, 3]

    def global_var(self) -> np.ndarray:
        """(D,) variance of all accumulated frames."""
        n = max(float(self.count.sum()), 1.0)
        mean = self.sum.sum(0) / n
        return np.maximum(self.sumsq.sum(0) / n - mean * mean, 0.0)

    def save(self, path: Path) -> None:
        buf = io.BytesIO()
        np.savez(buf, contexts=self.contexts, count=self.count, sum=self.sum, sumsq=self.sumsq)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> "TreeStats":
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(z["contexts"], z["count"], z["sum"], z["sumsq"])


def gauss_loglik(count: np.ndarray, sum_: np.ndarray, sumsq: np.ndarray, var_floor: np.ndarray) -> np.ndarray:
    """Log-likelihood of pooled frames under their own maximum-likelihood diagonal Gaussian.

    ``count (...)``, ``sum``/``sumsq (..., D)``, ``var_floor (D,)`` -> ``(...)`` float64 (0 where
    ``count`` is 0). The variance is floored, and the quadratic term is computed with the
    floored variance (not assumed to be ``D``): the floored ML Gaussian is then the best Gaussian
    with variances above the floor, so splitting a set never lowers the total log-likelihood."""
    n = np.maximum(count, 1e-300)[..., None]
    mean = sum_ / n
    ml_var = np.maximum(sumsq / n - mean * mean, 0.0)
    var = np.maximum(ml_var, var_floor)
    D = sum_.shape[-1]
    ll = -0.5 * (count * (D * LOG_2PI + np.log(var).sum(-1)) + (count[..., None] * ml_var / var).sum(-1))
    return np.where(count > 0, ll, 0.0)


@numba.njit(cache=True, nogil=True)
def _add_frames(rows: np.ndarray, feats: np.ndarray, count: np.ndarray, sx: np.ndarray, sxx: np.ndarray) -> None:
    for t in range(rows.shape[0]):
        r = rows[t]
        count[r] += 1.0
        for d in range(feats.shape[1]):
            v = np.float64(feats[t, d])
            sx[r, d] += v
            sxx[r, d] += v * v


class TreeStatsAccumulator:
    """Accumulates :class:`TreeStats` utterance by utterance (memory: the seen contexts only)."""

    def __init__(self, lang: Lang, dim: int) -> None:
        self.lang = lang
        self.dim = dim
        self._U = len(lang.units)
        self._S = int(lang.unit_num_states.max())
        self._rows: dict[int, int] = {}  # context key -> row
        cap = 1024
        self._count = np.zeros(cap)
        self._sx = np.zeros((cap, dim))
        self._sxx = np.zeros((cap, dim))

    def _key(self, left: np.ndarray, unit: np.ndarray, right: np.ndarray, state: np.ndarray) -> np.ndarray:
        U1 = self._U + 1
        return (((left.astype(np.int64) + 1) * self._U + unit) * U1 + (right + 1)) * self._S + state

    def _grow(self, need: int) -> None:
        cap = self._count.shape[0]
        if need <= cap:
            return
        new = max(need, 2 * cap)
        self._count = np.concatenate([self._count, np.zeros(new - cap)])
        self._sx = np.concatenate([self._sx, np.zeros((new - cap, self.dim))])
        self._sxx = np.concatenate([self._sxx, np.zeros((new - cap, self.dim))])

    def add(self, classes: np.ndarray, feats: np.ndarray) -> None:
        """One utterance: monophone class ids ``(T,)`` and aligner features ``(T, D)``."""
        if feats.shape != (classes.shape[0], self.dim):
            raise AsrkdError(f"tree statistics: {classes.shape[0]} labels for features of shape {feats.shape}")
        keys = self._key(*frame_contexts(classes, self.lang))
        uniq, inv = np.unique(keys, return_inverse=True)
        rows = np.fromiter((self._rows.setdefault(int(k), len(self._rows)) for k in uniq), np.int64, uniq.size)
        self._grow(len(self._rows))
        _add_frames(rows[inv], np.ascontiguousarray(feats), self._count, self._sx, self._sxx)

    def result(self) -> TreeStats:
        keys = np.fromiter(self._rows.keys(), np.int64, len(self._rows))
        rows = np.fromiter(self._rows.values(), np.int64, len(self._rows))
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
        U, S = self._U, self._S
        state = keys % S
        rest = keys // S
        right = rest % (U + 1) - 1
        rest //= U + 1
        unit = rest % U
        left = rest // U - 1
        ctx = np.stack([left, unit, right, state], axis=1).astype(np.int32)
        # Sorted by (unit, state, left, right): the contexts of one root are contiguous.
        order = np.lexsort((ctx[:, 2], ctx[:, 0], ctx[:, 3], ctx[:, 1]))
        rows, ctx = rows[order], ctx[order]
        return TreeStats(ctx, self._count[rows].copy(), self._sx[rows].copy(), self._sxx[rows].copy())


def accumulate_tree_stats(lang: Lang, items: Iterable[tuple[np.ndarray, np.ndarray]], dim: int) -> TreeStats:
    """Tree statistics of a set: ``items`` yields (monophone class ids ``(T,)``, features ``(T, D)``)."""
    acc = TreeStatsAccumulator(lang, dim)
    n = 0
    for classes, feats in items:
        acc.add(np.asarray(classes), feats)
        n += 1
    stats = acc.result()
    log.info("tree statistics: %d utterances, %d frames, %d distinct contexts", n, int(stats.count.sum()),
             stats.count.shape[0])
    return stats
