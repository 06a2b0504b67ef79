"""asrkd's own 1-best Viterbi beam search over a WFST (HCLG as :class:`asrkd.decode.fstio.FstArrays`).

Kaldi's ``FasterDecoder`` algorithm over plain arrays, in numba: tokens live on graph states (one
per state, the best survives); each frame, every token inside the beam follows the arcs with an
input label (``tid + 1``), paying ``lm_weight * arc cost + penalty [word arc] - loglik[t, pdf]``;
then the arrivals follow input-epsilon arcs (no frame consumed) until nothing improves. Pruning:
the beam around the frame's best cost (the previous frame's best token is expanded first, so the
bound is tight from the start), then max-active (the ``max_active``-th best cost as cutoff).

The search cost is the same as :class:`asrkd.decode.wfst_decoder.WfstDecoder`'s, without dividing
by the LM weight: ``acoustic + lm_weight * graph + penalty * words`` (so the beam passed in is the
kaldi engine's beam times the LM weight). The penalty and LM weight need no copy of the graph.

The graph's arcs must be sorted by input label (``build_hclg`` writes HCLG so): a state's
input-epsilon arcs come first.

Backtrace: a record ``(previous record, tid or -1, word or 0)`` is written whenever a token is
created or improved (records of tokens later beaten are garbage, bounded by the relaxations).
"""

from __future__ import annotations

import numba
import numpy as np

INF = np.inf


@numba.njit(cache=True, nogil=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    b = np.empty(max(2 * a.shape[0], n), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@numba.njit(cache=True, nogil=True, inline="always")
def _visit(d, frame, stamp, nxt, n_next):  # noqa: ANN001, ANN202
    """Mark state ``d`` active in ``frame`` (appended to ``nxt`` the first time)."""
    if stamp[d] != frame:
        stamp[d] = frame
        if n_next >= nxt.shape[0]:
            nxt = _grow(nxt, n_next + 1)
        nxt[n_next] = d
        n_next += 1
    return nxt, n_next


@numba.njit(cache=True, nogil=True, inline="always")
def _record(prev, tid, word, rec_prev, rec_tid, rec_word, n_rec):  # noqa: ANN001, ANN202
    """Append a backtrace record; returns the (possibly grown) arrays and the new count."""
    if n_rec >= rec_prev.shape[0]:
        rec_prev = _grow(rec_prev, n_rec + 1)
        rec_tid = _grow(rec_tid, n_rec + 1)
        rec_word = _grow(rec_word, n_rec + 1)
    rec_prev[n_rec] = prev
    rec_tid[n_rec] = tid
    rec_word[n_rec] = word
    return rec_prev, rec_tid, rec_word, n_rec + 1


@numba.njit(cache=True, nogil=True)
def fst_beam_search(loglik, tid_pdf, start, final, arc_start, ilabel, olabel, weight, nextstate,  # noqa: ANN001, ANN201
                    lm_weight, penalty, beam, max_active):
    """Best path of ``loglik: (T, P)`` (scaled log-likelihoods) through the graph.

    Returns ``(tids (T,) int32, words int32 array, cost, reached_final)``.
    """
    T = loglik.shape[0]
    S = final.shape[0]
    cost = np.full(S, INF)  # best cost of the token on each state in the frame being built
    trace = np.full(S, -1, dtype=np.int32)
    stamp = np.full(S, -1, dtype=np.int64)  # frame id of the token on each state
    cur = np.empty(1024, dtype=np.int32)
    nxt = np.empty(1024, dtype=np.int32)
    cur_cost = np.empty(1024, dtype=np.float64)
    cur_trace = np.empty(1024, dtype=np.int32)
    stack = np.empty(1024, dtype=np.int32)
    rec_prev = np.empty(4096, dtype=np.int32)
    rec_tid = np.empty(4096, dtype=np.int32)
    rec_word = np.empty(4096, dtype=np.int32)
    n_rec = 0

    # Frame "-1": the start state and its epsilon closure.
    n_next = 0
    frame = 0
    stamp[start] = frame
    cost[start] = 0.0
    trace[start] = -1
    nxt[0] = start
    n_next = 1
    for t in range(T + 1):
        # Epsilon closure of the frame just built (id `frame`), inside best + beam.
        best = INF
        for k in range(n_next):
            if cost[nxt[k]] < best:
                best = cost[nxt[k]]
        cutoff = best + beam
        top = 0
        for k in range(n_next):
            if top >= stack.shape[0]:
                stack = _grow(stack, top + 1)
            stack[top] = nxt[k]
            top += 1
        while top > 0:
            top -= 1
            s = stack[top]
            c = cost[s]
            if c > cutoff:
                continue
            for a in range(arc_start[s], arc_start[s + 1]):
                if ilabel[a] != 0:
                    break  # arcs are sorted by input label: the epsilons come first
                nc = c + lm_weight * weight[a]
                if olabel[a] > 0:
                    nc += penalty
                if nc > cutoff:
                    continue
                d = nextstate[a]
                if stamp[d] == frame and nc >= cost[d]:
                    continue
                nxt, n_next = _visit(d, frame, stamp, nxt, n_next)
                cost[d] = nc
                if olabel[a] > 0:
                    rec_prev, rec_tid, rec_word, n_rec = _record(trace[s], -1, olabel[a], rec_prev, rec_tid,
                                                                 rec_word, n_rec)
                    trace[d] = n_rec - 1
                else:
                    trace[d] = trace[s]
                if top >= stack.shape[0]:
                    stack = _grow(stack, top + 1)
                stack[top] = d
                top += 1
        # Survivors: inside the beam, then the max_active best.
        n_cur = 0
        if cur.shape[0] < n_next:
            cur = np.empty(n_next, dtype=np.int32)
            cur_cost = np.empty(n_next, dtype=np.float64)
            cur_trace = np.empty(n_next, dtype=np.int32)
        for k in range(n_next):
            s = nxt[k]
            if cost[s] <= cutoff:
                cur[n_cur] = s
                cur_cost[n_cur] = cost[s]
                cur_trace[n_cur] = trace[s]
                n_cur += 1
        if n_cur > max_active:
            kth = np.partition(cur_cost[:n_cur], max_active - 1)[max_active - 1]
            m = 0
            for k in range(n_cur):
                if cur_cost[k] <= kth and m < max_active:
                    cur[m] = cur[k]
                    cur_cost[m] = cur_cost[k]
                    cur_trace[m] = cur_trace[k]
                    m += 1
            n_cur = m
        if t == T:
            break
        # Emitting arcs of frame t into the next frame; the best token goes first.
        frame += 1
        n_next = 0
        row = loglik[t]
        bi = 0
        for k in range(n_cur):
            if cur_cost[k] < cur_cost[bi]:
                bi = k
        next_cutoff = INF
        for kk in range(n_cur):
            k = bi if kk == 0 else (0 if kk == bi else kk)
            s = cur[k]
            c = cur_cost[k]
            a0 = arc_start[s]
            a1 = arc_start[s + 1]
            while a0 < a1 and ilabel[a0] == 0:
                a0 += 1
            for a in range(a0, a1):
                il = ilabel[a]
                nc = c + lm_weight * weight[a] - row[tid_pdf[il - 1]]
                if olabel[a] > 0:
                    nc += penalty
                if nc > next_cutoff:
                    continue
                d = nextstate[a]
                if stamp[d] == frame and nc >= cost[d]:
                    continue
                nxt, n_next = _visit(d, frame, stamp, nxt, n_next)
                cost[d] = nc
                rec_prev, rec_tid, rec_word, n_rec = _record(cur_trace[k], il - 1, max(olabel[a], 0), rec_prev,
                                                             rec_tid, rec_word, n_rec)
                trace[d] = n_rec - 1
                if nc + beam < next_cutoff:
                    next_cutoff = nc + beam

    # Best final token (else the best token: the utterance ended mid-word).
    best_k = -1
    best_c = INF
    for k in range(n_cur):
        c = cur_cost[k] + lm_weight * final[cur[k]]
        if c < best_c:
            best_c = c
            best_k = k
    reached = best_k >= 0
    if not reached:
        for k in range(n_cur):
            if cur_cost[k] < best_c:
                best_c = cur_cost[k]
                best_k = k
    tids = np.full(T, -1, dtype=np.int32)
    n_words = 0
    r = cur_trace[best_k] if best_k >= 0 else -1
    while r >= 0:
        if rec_word[r] > 0:
            n_words += 1
        r = rec_prev[r]
    words = np.empty(n_words, dtype=np.int32)
    r = cur_trace[best_k] if best_k >= 0 else -1
    t = T - 1
    w = n_words - 1
    while r >= 0:
        if rec_tid[r] >= 0:
            tids[t] = rec_tid[r]
            t -= 1
        if rec_word[r] > 0:
            words[w] = rec_word[r]
            w -= 1
        r = rec_prev[r]
    return tids, words, best_c, reached
