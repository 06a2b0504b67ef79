"""Banded log-domain Viterbi over a left-to-right state graph (numba).

The graph of one utterance is a chain of ``N`` nodes in topological order (see
:mod:`asrkd.align.graph`). Node ``j`` may be entered from itself (self-loop), from ``j - 1``
(forward) and from one earlier node ``skip_src[j]`` (used to jump over an optional silence).
Because every edge goes forward by a bounded amount, node ``j`` can only be occupied at frame
``t`` if it is reachable from a start node in ``t + 1`` frames (``earliest[j] <= t``) and an
end node is reachable from it in the remaining ``n_frames - t`` frames (``remaining[j] <= n_frames - t``).
Both limits are non-decreasing in ``t``, so each frame only visits the band ``[lo(t), hi(t)]``
of nodes; cells outside it are never touched.

The trellis is kept as one score vector updated in place from the highest node down (every
predecessor has a lower index, so it still holds the previous frame's value when read; the few
skip sources are saved before the sweep), and
backpointers are one byte per cell (0 self, 1 forward, 2 skip). Scores are float64 sums of
float32 log-likelihoods.
"""

from __future__ import annotations

import numba
import numpy as np

NEG_INF = -np.inf

BP_SELF, BP_FORWARD, BP_SKIP = 0, 1, 2


@numba.njit(cache=True)
def reach_limits(
    start_lp: np.ndarray, final_lp: np.ndarray, skip_src: np.ndarray
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
        if j > 0 and earliest[j - 1] + 1 < e:
            e = earliest[j - 1] + 1
        s = skip_src[j]
        if s >= 0 and earliest[s] + 1 < e:
            e = earliest[s] + 1
        earliest[j] = e
    remaining = np.full(n, big, dtype=np.int64)
    for j in range(n - 1, -1, -1):
        r = remaining[j]
        if final_lp[j] > NEG_INF and r > 1:
            r = 1
        if j + 1 < n and remaining[j + 1] + 1 < r:
            r = remaining[j + 1] + 1
        remaining[j] = r
        s = skip_src[j]
        # Node s is a predecessor of j through a skip: s can finish via j.
        if s >= 0 and r + 1 < remaining[s]:
            remaining[s] = r + 1
    return earliest, remaining


@numba.njit(cache=True)
def min_frames(start_lp: np.ndarray, final_lp: np.ndarray, skip_src: np.ndarray) -> int:
    """Fewest frames any complete path through the graph needs."""
    earliest, remaining = reach_limits(start_lp, final_lp, skip_src)
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
    skip_src: np.ndarray,
    skip_lp: np.ndarray,
    start_lp: np.ndarray,
    final_lp: np.ndarray,
    path: np.ndarray,
) -> float:
    """Best path of ``n_frames`` (``loglik.shape[0]``) frames through the graph.

    ``loglik: (frames, K)`` float32 emission scores; node ``j`` emits ``loglik[t, node_col[j]]``.
    ``self_lp, enter_lp, skip_lp, start_lp, final_lp: (N,)`` log-probabilities (``enter_lp[j]``
    is for the edge ``j-1 -> j``, ``skip_lp[j]`` for ``skip_src[j] -> j``; -inf = no edge).
    ``path: (frames,)`` int32, filled with the node of every frame. Returns the path's total log
    score, or -inf (path untouched) if no path of exactly ``n_frames`` frames exists.
    """
    n_frames = loglik.shape[0]
    n = node_col.shape[0]
    earliest, remaining = reach_limits(start_lp, final_lp, skip_src)
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

    # Skip edges are few (one per optional silence): their sources' previous-frame scores are
    # saved before the sweep, so the sweep itself is a branch-free two-way max (random-looking
    # emissions make the self/forward choice unpredictable, and mispredictions dominated).
    skip_nodes = np.empty(n, dtype=np.int64)
    num_skip = 0
    for j in range(n):
        if skip_src[j] >= 0:
            skip_nodes[num_skip] = j
            num_skip += 1
    saved = np.empty(num_skip, dtype=np.float64)

    score = np.full(n + 1, NEG_INF, dtype=np.float64)  # score[j + 1] is node j; score[0] = -inf
    bp = np.empty((n_frames, n), dtype=np.int8)  # only band cells are written, and only they are read back
    lo = 0
    hi = -1
    for t in range(n_frames):
        while hi + 1 < n and suffix_e[hi + 1] <= t:
            hi += 1
        new_lo = lo
        while new_lo < n and prefix_r[new_lo] > n_frames - t:
            new_lo += 1
        row = loglik[t]
        bprow = bp[t]
        if t == 0:
            for j in range(new_lo, hi + 1):
                if start_lp[j] > NEG_INF:
                    score[j + 1] = start_lp[j] + row[node_col[j]]
        else:
            for k in range(num_skip):
                saved[k] = score[skip_src[skip_nodes[k]] + 1]
            for j in range(hi, new_lo - 1, -1):
                a = score[j + 1] + self_lp[j]
                b = score[j] + enter_lp[j]
                take = b > a
                score[j + 1] = (b if take else a) + row[node_col[j]]
                bprow[j] = np.int8(take)
            for k in range(num_skip):
                j = skip_nodes[k]
                if j < new_lo or j > hi:
                    continue
                c = saved[k] + skip_lp[j] + row[node_col[j]]
                if c > score[j + 1]:
                    score[j + 1] = c
                    bprow[j] = 2
            # Nodes that fell out of the band keep frame t-1 values: clear them so frame t+1
            # cannot read them as frame-t scores.
            for j in range(lo, new_lo):
                score[j + 1] = NEG_INF
        lo = new_lo

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
            if b == 1:
                j = j - 1
            elif b == 2:
                j = skip_src[j]
    return best


@numba.njit(cache=True)
def path_score(
    loglik: np.ndarray,
    node_col: np.ndarray,
    self_lp: np.ndarray,
    enter_lp: np.ndarray,
    skip_src: np.ndarray,
    skip_lp: np.ndarray,
    start_lp: np.ndarray,
    final_lp: np.ndarray,
    path: np.ndarray,
) -> float:
    """Total log score of a given node path ``(frames,)`` (-inf if it uses a missing edge)."""
    n_frames = path.shape[0]
    total = start_lp[path[0]] + loglik[0, node_col[path[0]]]
    for t in range(1, n_frames):
        a = path[t - 1]
        b = path[t]
        if b == a:
            total += self_lp[b]
        elif b == a + 1:
            total += enter_lp[b]
        elif skip_src[b] == a:
            total += skip_lp[b]
        else:
            return NEG_INF
        total += loglik[t, node_col[b]]
    return total + final_lp[path[n_frames - 1]]
