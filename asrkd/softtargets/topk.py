"""The k largest probabilities of each frame, as a stable descending sort would give them.

``torch.sort`` over every class costs O(C log C) per frame and ``torch.topk`` leaves the order
of equal values open; at 2,000 classes the sort took 70% of ``cache-targets``' time
(tools/scale_rehearsal.py profile). This kernel keeps, per row, an insertion-sorted list of the
k best seen so far while it walks the classes in id order: one pass, O(C) for typical
posteriors. A value enters only when strictly greater than the current k-th, and goes after
the equal values already kept, so ties are ordered by class id exactly as by
``torch.sort(..., descending=True, stable=True)`` and the stored bytes do not depend on a
kernel's choice. The tail (the mass outside the top k) is summed in float64 from the values
below the k-th plus the unkept copies of the k-th value: no cancellation against 1.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from asrkd.kernels.threads import match_numba_threads


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_k_rows(p: np.ndarray, k: int, vals: np.ndarray, ids: np.ndarray, tail: np.ndarray) -> None:
    n, C = p.shape
    for r in prange(n):
        v = vals[r]
        d = ids[r]
        m = 0
        for c in range(C):
            x = p[r, c]
            if m < k:
                j = m
                m += 1
            elif x > v[k - 1]:
                j = k - 1
            else:
                continue
            while j > 0 and v[j - 1] < x:  # strictly smaller values move down: equal ones stay first
                v[j] = v[j - 1]
                d[j] = d[j - 1]
                j -= 1
            v[j] = x
            d[j] = c
        thr = v[k - 1]
        kept_eq = 0
        for j in range(k):
            if v[j] == thr:
                kept_eq += 1
        s = 0.0
        eq = 0
        for c in range(C):
            x = p[r, c]
            if x < thr:
                s += np.float64(x)
            elif x == thr:
                eq += 1
        tail[r] = s + np.float64(thr) * (eq - kept_eq)


def top_k_stable(probs: np.ndarray, k: int, threads: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``probs: (N, C)`` float32 -> top values ``(N, k)`` float32, their class ids ``(N, k)``
    int64 (descending, ties by id) and the tail ``(N,)`` float64 (sum of the other classes).
    ``threads``: at most this many numba threads (0: numba's default); ``cache-targets`` jobs
    pass torch's per-job count so that ``--nj`` workers do not oversubscribe the cores."""
    p = np.ascontiguousarray(probs, dtype=np.float32)
    n, C = p.shape
    if not 1 <= k <= C:
        raise ValueError(f"top-k: k={k} must be in [1, {C}]")
    vals = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    tail = np.empty(n, dtype=np.float64)
    if n:
        if threads > 0:
            match_numba_threads(threads)
        _top_k_rows(p, k, vals, ids, tail)
    return vals, ids, tail
