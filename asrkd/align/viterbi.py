"""Banded log-domain Viterbi over a left-to-right state graph (numba).

The graph of one utterance is ``N`` nodes in topological order (see :mod:`asrkd.align.graph`).
Node ``j`` may be entered from itself (self-loop), from ``j - 1`` (``enter_lp[j]``, -inf: no such
edge) and from a few earlier nodes by *extra edges* (the skip over an optional silence, the
edges between the context variants of a word boundary), stored grouped by destination:
``extra_start[j] .. extra_start[j+1]-1`` index ``extra_src`` / ``extra_lp``. Because every edge
goes forward, node ``j`` can only be occupied at frame ``t`` if it is reachable from a start node
in ``t + 1`` frames (``earliest[j] <= t``) and an end node is reachable from it in the remaining
``n_frames - t`` frames (``remaining[j] <= n_frames - t``). Both limits are non-decreasing in ``t``, so each
frame only visits the band ``[lo(t), hi(t)]`` of nodes; cells outside it are never touched.

The trellis is two score vectors, the previous frame's and the current one (swapped every
frame): the sweep over the band is a branch-free two-way max (random-looking emissions make the
self/forward choice unpredictable, and branch mispredictions dominated), and the extra edges,
few, are a second pass over the previous frame's vector. Backpointers are one byte per cell (0 self, 1 from
``j - 1``, ``2 + m`` the node's ``m``-th extra edge). Scores are float64 sums of float32
log-likelihoods.
"""

from __future__ import annotations

import numba
import numpy as np

NEG_INF = -np.inf

BP_SELF, BP_FORWARD, BP_EXTRA = 0, 1, 2
MAX_EXTRA_IN = 125  # extra in-edges per node that a one-byte backpointer can name


@numba.njit(cache=True)
def reach_limits(
    start_lp: np.ndarray, enter_lp: np.ndarray, final_lp: np.ndarray, extra_start: np.ndarray,
    extra_src: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per node: ``earliest`` (fewest frames before it, 0 for a start node) and ``remaining``
    (fewest frames from it to the end, itself included). Unreachable -> a large number."""
    n = start_lp.shape[0]
    big = 1 << 40
    earliest = np.full(n, big, dtype=np.int64)
    for j in range(n):
        e = big
        if start_lp[j] > NEG_INF:
            e = 0
        if j > 0 and enter_lp[j] > NEG_INF and earliest[j - 1] + 1 < e:
            e = earliest[j - 1] + 1
        for k in range(extra_start[j], extra_start[j + 1]):
            s = extra_src[k]
            if earliest[s] + 1 < e:
                e = earliest[s] + 1
        earliest[j] = e
    remaining = np.full(n, big, dtype=np.int64)
    for j in range(n - 1, -1, -1):
        r = remaining[j]
        if final_lp[j] > NEG_INF and r > 1:
            r = 1
        if j + 1 < n and enter_lp[j + 1] > NEG_INF and remaining[j + 1] + 1 < r:
            r = remaining[j + 1] + 1
        remaining[j] = r
        # Node s is a predecessor of j through an extra edge: s can finish via j.
        for k in range(extra_start[j], extra_start[j + 1]):
            s = extra_src[k]
            if r + 1 < remaining[s]:
                remaining[s] = r + 1
    return earliest, remaining


@numba.njit(cache=True)
def min_frames(start_lp: np.ndarray, enter_lp: np.ndarray, final_lp: np.ndarray, extra_start: np.ndarray,
               extra_src: np.ndarray) -> int:
    """Fewest frames any complete path through the graph needs."""
    earliest, remaining = reach_limits(start_lp, enter_lp, final_lp, extra_start, extra_src)
    best = 1 << 40
    for j in range(start_lp.shape[0]):
        if start_lp[j] > NEG_INF and remaining[j] < best:
            best = remaining[j]
    return best


@numba.njit(cache=True)
def viterbi(
    loglik: np.ndarray,
    node_col: np.ndarray,
    self_lp: np.ndarray,
    enter_lp: np.ndarray,
    extra_start: np.ndarray,
    extra_src: np.ndarray,
    extra_lp: np.ndarray,
    start_lp: np.ndarray,
    final_lp: np.ndarray,
    path: np.ndarray,
) -> float:
    """Best path of ``n_frames`` (``loglik.shape[0]``) frames through the graph.

    ``loglik: (frames, K)`` float32 emission scores; node ``j`` emits ``loglik[t, node_col[j]]``.
    ``self_lp, enter_lp, start_lp, final_lp: (N,)`` log-probabilities (``enter_lp[j]`` is for the
    edge ``j-1 -> j``; -inf = no edge); ``extra_start: (N+1,)``, ``extra_src, extra_lp: (E,)`` the
    extra edges grouped by destination. ``path: (frames,)`` int32, filled with the node of every
    frame. Returns the path's total log score, or -inf (path untouched) if no path of exactly
    ``frames`` frames exists.
    """
    n_frames = loglik.shape[0]
    n = node_col.shape[0]
    earliest, remaining = reach_limits(start_lp, enter_lp, final_lp, extra_start, extra_src)
    # Monotone envelopes so that two pointers can track the band.
    big = 1 << 40
    suffix_e = np.empty(n, dtype=np.int64)  # min earliest over nodes >= j (non-decreasing)
    m = big
    for j in range(n - 1, -1, -1):
        if earliest[j] < m:
            m = earliest[j]
        suffix_e[j] = m
    prefix_r = np.empty(n, dtype=np.int64)  # min remaining over nodes <= j (non-increasing)
    m = big
    for j in range(n):
        if remaining[j] < m:
            m = remaining[j]
        prefix_r[j] = m
    if n_frames == 0 or n == 0:
        return NEG_INF
    best_start = big
    for j in range(n):
        if start_lp[j] > NEG_INF and remaining[j] < best_start:
            best_start = remaining[j]
    if best_start > n_frames:
        return NEG_INF

    # Extra edges are few (a handful per word boundary), sorted by destination: the band's
    # edges are a window [e_lo, e_hi) that moves forward with it.
    num_extra = extra_src.shape[0]
    extra_dst = np.empty(num_extra, dtype=np.int64)
    for j in range(n):
        for k in range(extra_start[j], extra_start[j + 1]):
            extra_dst[k] = j

    # score[j + 1] is node j; score[0] stays -inf (node 0 has no predecessor j - 1). A buffer
    # holds -inf for every node below the band it was last written with: nodes there may be
    # read (as j - 1, or as an extra edge's source) but have no path.
    prev = np.full(n + 1, NEG_INF, dtype=np.float64)
    cur = np.full(n + 1, NEG_INF, dtype=np.float64)
    prev_lo = 0  # band start the buffer `cur` was last written with (two frames ago)
    bp = np.empty((n_frames, n), dtype=np.int8)  # only band cells are written, and only they are read back
    lo = 0
    hi = -1
    e_lo = 0
    e_hi = 0
    for t in range(n_frames):
        while hi + 1 < n and suffix_e[hi + 1] <= t:
            hi += 1
        new_lo = lo
        while new_lo < n and prefix_r[new_lo] > n_frames - t:
            new_lo += 1
        while e_hi < num_extra and extra_dst[e_hi] <= hi:
            e_hi += 1
        while e_lo < e_hi and extra_dst[e_lo] < new_lo:
            e_lo += 1
        row = loglik[t]
        bprow = bp[t]
        for j in range(prev_lo, new_lo):  # stale values below the band
            cur[j + 1] = NEG_INF
        if t == 0:
            for j in range(new_lo, hi + 1):
                if start_lp[j] > NEG_INF:
                    cur[j + 1] = start_lp[j] + row[node_col[j]]
        else:
            for j in range(new_lo, hi + 1):
                a = prev[j + 1] + self_lp[j]
                b = prev[j] + enter_lp[j]
                take = b > a
                cur[j + 1] = (b if take else a) + row[node_col[j]]
                bprow[j] = np.int8(take)
            for k in range(e_lo, e_hi):
                j = extra_dst[k]
                c = prev[extra_src[k] + 1] + extra_lp[k] + row[node_col[j]]
                if c > cur[j + 1]:
                    cur[j + 1] = c
                    bprow[j] = np.int8(BP_EXTRA + k - extra_start[j])
        prev_lo = lo
        lo = new_lo
        prev, cur = cur, prev
    score = prev  # the last frame's

    best = NEG_INF
    last = -1
    for j in range(n):
        if final_lp[j] > NEG_INF:
            c = score[j + 1] + final_lp[j]
            if c > best:
                best = c
                last = j
    if last < 0:
        return NEG_INF
    j = last
    for t in range(n_frames - 1, -1, -1):
        path[t] = j
        if t > 0:
            b = bp[t, j]
            if b == BP_FORWARD:
                j = j - 1
            elif b >= BP_EXTRA:
                j = extra_src[extra_start[j] + b - BP_EXTRA]
    return best


@numba.njit(cache=True)
def path_score(
    loglik: np.ndarray,
    node_col: np.ndarray,
    self_lp: np.ndarray,
    enter_lp: np.ndarray,
    extra_start: np.ndarray,
    extra_src: np.ndarray,
    extra_lp: np.ndarray,
    start_lp: np.ndarray,
    final_lp: np.ndarray,
    path: np.ndarray,
) -> float:
    """Total log score of a given node path ``(frames,)`` (-inf if it uses a missing edge; of two
    edges between the same nodes, the better counts)."""
    n_frames = path.shape[0]
    total = start_lp[path[0]] + loglik[0, node_col[path[0]]]
    for t in range(1, n_frames):
        a = path[t - 1]
        b = path[t]
        lp = NEG_INF
        if b == a:
            lp = self_lp[b]
        if b == a + 1 and enter_lp[b] > lp:
            lp = enter_lp[b]
        for k in range(extra_start[b], extra_start[b + 1]):
            if extra_src[k] == a and extra_lp[k] > lp:
                lp = extra_lp[k]
        if lp == NEG_INF:
            return NEG_INF
        total += lp + loglik[t, node_col[b]]
    return total + final_lp[path[n_frames - 1]]
