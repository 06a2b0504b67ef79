"""Viterbi beam search (token passing) over unit HMMs, a unit network and a unit n-gram LM.

A search state is ``(LM state, graph node, HMM state)``. Every frame each surviving token
(score, backpointer) moves along its HMM state's self-loop, to the next state, or, from the
last state, into the first state of every successor node, paying there
``lm_weight * log p_LM(unit | LM state) - insertion_penalty`` (or ``silence_logp`` for a silence
node, which leaves the LM state unchanged). Tokens that reach the same search state recombine
(the better one survives, Viterbi). Pruning, as in Kaldi's decoders:

- a beam: while a frame is expanded, a candidate worse than (best so far in this frame - beam)
  is dropped before it is stored (the previous frame's best token is expanded first so the
  bound is tight early, and the LM is only looked up for candidates still inside the beam
  without it, since an LM log-probability is <= 0);
- max-active: when more than ``max_active`` tokens are inside the beam, only the best
  ``max_active`` survive.

Backpointers: a token carries the index of a *trace record* ``(node, start frame, previous
record)`` of the unit it came from; records are written only when a token leaves a node, so
memory grows with the number of unit entries, not frames x states.

Scores are float64; emission scores come in already scaled (``loglik: (frames, C)`` float32).
"""

from __future__ import annotations

import numba
import numpy as np

from asrkd.lang.unit_lm import lm_lookup

NEG = -1.0e30


@numba.njit(cache=True, nogil=True, inline="always")
def _hash(key: np.int64, mask: np.int64) -> np.int64:
    # Fibonacci hashing; the multiply wraps in uint64.
    return np.int64((np.uint64(key) * np.uint64(11400714819323198485)) >> np.uint64(20)) & mask


@numba.njit(cache=True, nogil=True)
def _rehash(t_key, t_val, t_stamp, stamp, n_key, n_count):  # noqa: ANN001, ANN202
    mask = np.int64(t_key.shape[0] - 1)
    for i in range(n_count):
        h = _hash(n_key[i], mask)
        while t_stamp[h] == stamp:
            h = (h + 1) & mask
        t_stamp[h] = stamp
        t_key[h] = n_key[i]
        t_val[h] = i


@numba.njit(cache=True, nogil=True)
def beam_search(
    loglik: np.ndarray,
    hmm_nstates: np.ndarray,
    hmm_cls: np.ndarray,
    hmm_self: np.ndarray,
    hmm_fwd: np.ndarray,
    node_unit: np.ndarray,
    node_is_sil: np.ndarray,
    node_final: np.ndarray,
    node_to_roots: np.ndarray,
    succ_start: np.ndarray,
    succ_node: np.ndarray,
    roots: np.ndarray,
    lm_start: int,
    lm_arc_start: np.ndarray,
    lm_arc_unit: np.ndarray,
    lm_arc_logp: np.ndarray,
    lm_arc_next: np.ndarray,
    lm_backoff_logw: np.ndarray,
    lm_backoff_state: np.ndarray,
    lm_eos: int,
    lm_weight: float,
    insertion_penalty: float,
    silence_logp: float,
    transition_scale: float,
    beam: float,
    max_active: int,
    entry_beam: float,
):  # noqa: ANN201
    """Best path of ``loglik: (frames, C)`` through the graph.

    Returns ``(rec_node, rec_start, rec_prev, last_record, score, reached_final, max_tokens)``:
    the trace records (int32 arrays) and the index of the best path's last record (-1 for
    no frames); following ``rec_prev`` gives the nodes of the path backwards, each with its start
    frame. ``reached_final`` is False when no token ended in a final state (the best token was
    taken instead). ``max_tokens``: the largest number of tokens kept after pruning in a frame.
    """
    n_frames = loglik.shape[0]
    N = node_unit.shape[0]
    Smax = hmm_cls.shape[1]
    num_roots = roots.shape[0]
    max_succ = num_roots
    for n in range(N):
        d = succ_start[n + 1] - succ_start[n]
        if d + num_roots > max_succ:
            max_succ = d + num_roots

    # Trace records.
    rec_cap = 1024
    rec_node = np.empty(rec_cap, dtype=np.int32)
    rec_start = np.empty(rec_cap, dtype=np.int32)
    rec_prev = np.empty(rec_cap, dtype=np.int32)
    n_rec = 0
    if n_frames == 0:
        return rec_node[:0], rec_start[:0], rec_prev[:0], -1, 0.0, True, 0

    # Tokens of the frame being read (c_) and written (n_).
    cap = 4096
    while cap < 4 * max_succ:
        cap *= 2
    c_lm = np.empty(cap, dtype=np.int32)
    c_node = np.empty(cap, dtype=np.int32)
    c_s = np.empty(cap, dtype=np.int32)
    c_score = np.empty(cap, dtype=np.float64)
    c_bp = np.empty(cap, dtype=np.int32)
    c_start = np.empty(cap, dtype=np.int32)
    n_lm = np.empty(cap, dtype=np.int32)
    n_node = np.empty(cap, dtype=np.int32)
    n_s = np.empty(cap, dtype=np.int32)
    n_score = np.empty(cap, dtype=np.float64)
    n_bp = np.empty(cap, dtype=np.int32)
    n_start = np.empty(cap, dtype=np.int32)
    n_key = np.empty(cap, dtype=np.int64)
    t_key = np.empty(2 * cap, dtype=np.int64)
    t_val = np.empty(2 * cap, dtype=np.int32)
    t_stamp = np.zeros(2 * cap, dtype=np.int32)
    stamp = 0
    c_count = 0
    best_i = 0
    max_tokens = 0

    root_cls = np.empty(num_roots, dtype=np.int32)
    for q in range(num_roots):
        root_cls[q] = hmm_cls[node_unit[roots[q]], 0]

    for t in range(n_frames):
        row = loglik[t]
        # Best emission score of any root's first state: bounds every entry into the roots.
        best_root_ac = NEG
        for q in range(num_roots):
            if row[root_cls[q]] > best_root_ac:
                best_root_ac = row[root_cls[q]]
        stamp += 1
        n_count = 0
        best_next = NEG
        cutoff = NEG
        mask = np.int64(t_key.shape[0] - 1)
        # t == 0: one pseudo-token that "exits" into the roots; else every live token.
        todo = 1 if t == 0 else c_count
        for k in range(todo):
            # Room for this token's expansions (2 + successors); grow everything if needed.
            if n_count + 2 + max_succ > cap:
                new_cap = cap * 2
                c_lm2 = np.empty(new_cap, dtype=np.int32); c_lm2[:c_count] = c_lm[:c_count]; c_lm = c_lm2
                c_node2 = np.empty(new_cap, dtype=np.int32); c_node2[:c_count] = c_node[:c_count]; c_node = c_node2
                c_s2 = np.empty(new_cap, dtype=np.int32); c_s2[:c_count] = c_s[:c_count]; c_s = c_s2
                c_score2 = np.empty(new_cap, dtype=np.float64); c_score2[:c_count] = c_score[:c_count]; c_score = c_score2
                c_bp2 = np.empty(new_cap, dtype=np.int32); c_bp2[:c_count] = c_bp[:c_count]; c_bp = c_bp2
                c_start2 = np.empty(new_cap, dtype=np.int32); c_start2[:c_count] = c_start[:c_count]; c_start = c_start2
                n_lm2 = np.empty(new_cap, dtype=np.int32); n_lm2[:n_count] = n_lm[:n_count]; n_lm = n_lm2
                n_node2 = np.empty(new_cap, dtype=np.int32); n_node2[:n_count] = n_node[:n_count]; n_node = n_node2
                n_s2 = np.empty(new_cap, dtype=np.int32); n_s2[:n_count] = n_s[:n_count]; n_s = n_s2
                n_score2 = np.empty(new_cap, dtype=np.float64); n_score2[:n_count] = n_score[:n_count]; n_score = n_score2
                n_bp2 = np.empty(new_cap, dtype=np.int32); n_bp2[:n_count] = n_bp[:n_count]; n_bp = n_bp2
                n_start2 = np.empty(new_cap, dtype=np.int32); n_start2[:n_count] = n_start[:n_count]; n_start = n_start2
                n_key2 = np.empty(new_cap, dtype=np.int64); n_key2[:n_count] = n_key[:n_count]; n_key = n_key2
                cap = new_cap
                t_key = np.empty(2 * cap, dtype=np.int64)
                t_val = np.empty(2 * cap, dtype=np.int32)
                t_stamp = np.zeros(2 * cap, dtype=np.int32)
                mask = np.int64(t_key.shape[0] - 1)
                _rehash(t_key, t_val, t_stamp, stamp, n_key, n_count)

            # Expand the previous frame's best token first: it sets a tight cutoff early.
            i = k
            if k == 0:
                i = best_i
            elif k == best_i:
                i = 0
            exiting = True
            exit_score = 0.0
            lm = lm_start
            bp = -1
            node = -1
            if t > 0:
                node = c_node[i]
                s = c_s[i]
                u = node_unit[node]
                sc = c_score[i]
                lm = c_lm[i]
                # Inside the unit: self-loop and forward (same backpointer and start frame).
                for move in range(2):
                    if move == 0:
                        ns = s
                        cand = sc + transition_scale * hmm_self[u, s]
                    else:
                        if s + 1 >= hmm_nstates[u]:
                            break
                        ns = s + 1
                        cand = sc + transition_scale * hmm_fwd[u, s]
                    cand += row[hmm_cls[u, ns]]
                    if cand <= cutoff:
                        continue
                    key = (np.int64(lm) * N + node) * Smax + ns
                    h = _hash(key, mask)
                    while t_stamp[h] == stamp and t_key[h] != key:
                        h = (h + 1) & mask
                    if t_stamp[h] == stamp:
                        j = t_val[h]
                        if cand <= n_score[j]:
                            continue
                    else:
                        j = n_count
                        n_count += 1
                        t_stamp[h] = stamp
                        t_key[h] = key
                        t_val[h] = j
                        n_key[j] = key
                    n_lm[j] = lm
                    n_node[j] = node
                    n_s[j] = ns
                    n_score[j] = cand
                    n_bp[j] = c_bp[i]
                    n_start[j] = c_start[i]
                    if cand > best_next:
                        best_next = cand
                        cutoff = cand - beam
                exiting = s == hmm_nstates[u] - 1
                exit_score = sc + transition_scale * hmm_fwd[u, s]
            if not exiting:
                continue
            # Leave the unit: enter every successor node (explicit ones, then the roots), if
            # within the entry beam (tighter than the beam: entries are what multiplies tokens).
            entry_cutoff = best_next - entry_beam
            if entry_cutoff < cutoff:
                entry_cutoff = cutoff
            rec = -1
            n_explicit = 0 if node < 0 else succ_start[node + 1] - succ_start[node]
            n_all = n_explicit + (num_roots if (node < 0 or node_to_roots[node]) else 0)
            if n_explicit == 0 and exit_score + best_root_ac - insertion_penalty <= entry_cutoff \
                    and exit_score + best_root_ac + silence_logp <= entry_cutoff:
                continue  # no root can make it: skip the loop over them
            for q in range(n_all):
                if q < n_explicit:
                    m = succ_node[succ_start[node] + q]
                else:
                    m = roots[q - n_explicit]
                v = node_unit[m]
                cand = exit_score + row[hmm_cls[v, 0]]
                nlm = lm
                if node_is_sil[m]:
                    cand += silence_logp
                    if cand <= entry_cutoff:
                        continue
                else:
                    cand -= insertion_penalty
                    if cand <= entry_cutoff:
                        continue  # an LM log-probability cannot raise it
                    lp, nlm = lm_lookup(lm, v, lm_arc_start, lm_arc_unit, lm_arc_logp, lm_arc_next,
                                        lm_backoff_logw, lm_backoff_state)
                    cand += lm_weight * lp
                    if cand <= entry_cutoff:
                        continue
                key = (np.int64(nlm) * N + m) * Smax
                h = _hash(key, mask)
                while t_stamp[h] == stamp and t_key[h] != key:
                    h = (h + 1) & mask
                if t_stamp[h] == stamp:
                    j = t_val[h]
                    if cand <= n_score[j]:
                        continue
                else:
                    j = n_count
                    n_count += 1
                    t_stamp[h] = stamp
                    t_key[h] = key
                    t_val[h] = j
                    n_key[j] = key
                if rec < 0 and node >= 0:
                    if n_rec == rec_cap:
                        rec_cap *= 2
                        r2 = np.empty(rec_cap, dtype=np.int32); r2[:n_rec] = rec_node[:n_rec]; rec_node = r2
                        r2 = np.empty(rec_cap, dtype=np.int32); r2[:n_rec] = rec_start[:n_rec]; rec_start = r2
                        r2 = np.empty(rec_cap, dtype=np.int32); r2[:n_rec] = rec_prev[:n_rec]; rec_prev = r2
                    rec_node[n_rec] = node
                    rec_start[n_rec] = c_start[i]
                    rec_prev[n_rec] = c_bp[i]
                    rec = n_rec
                    n_rec += 1
                n_lm[j] = nlm
                n_node[j] = m
                n_s[j] = 0
                n_score[j] = cand
                n_bp[j] = rec
                n_start[j] = t
                if cand > best_next:
                    best_next = cand
                    cutoff = cand - beam

        # Prune: beam, then max-active; keep survivors as the current tokens.
        thresh = best_next - beam
        inside = 0
        for j in range(n_count):
            if n_score[j] > thresh:
                inside += 1
        if inside > max_active:
            kth = np.partition(-n_score[:n_count], max_active - 1)[max_active - 1]
            if -kth > thresh:
                thresh = -kth
            thresh = np.nextafter(thresh, -np.inf)  # keep the max_active-th itself
        c_count = 0
        best_i = 0
        best_sc = NEG
        for j in range(n_count):
            if n_score[j] > thresh and c_count < max_active:
                c_lm[c_count] = n_lm[j]
                c_node[c_count] = n_node[j]
                c_s[c_count] = n_s[j]
                c_score[c_count] = n_score[j]
                c_bp[c_count] = n_bp[j]
                c_start[c_count] = n_start[j]
                if n_score[j] > best_sc:
                    best_sc = n_score[j]
                    best_i = c_count
                c_count += 1
        if c_count > max_tokens:
            max_tokens = c_count

    # Best token that may end the utterance: last HMM state of a final node, plus LM end.
    best = NEG
    best_j = -1
    best_end = NEG
    for j in range(c_count):
        node = c_node[j]
        u = node_unit[node]
        if c_s[j] != hmm_nstates[u] - 1 or not node_final[node]:
            continue
        lp, _ = lm_lookup(c_lm[j], lm_eos, lm_arc_start, lm_arc_unit, lm_arc_logp, lm_arc_next,
                          lm_backoff_logw, lm_backoff_state)
        sc = c_score[j] + transition_scale * hmm_fwd[u, c_s[j]] + lm_weight * lp
        if sc > best:
            best = sc
            best_j = j
    reached = best_j >= 0
    if not reached:
        for j in range(c_count):
            if c_score[j] > best_end:
                best_end = c_score[j]
                best_j = j
        best = best_end
    if best_j < 0:  # nothing survived (e.g. every emission score was -inf)
        return rec_node[:n_rec], rec_start[:n_rec], rec_prev[:n_rec], -1, NEG, False, max_tokens
    if n_rec == rec_cap:
        rec_cap += 1
        r2 = np.empty(rec_cap, dtype=np.int32); r2[:n_rec] = rec_node[:n_rec]; rec_node = r2
        r2 = np.empty(rec_cap, dtype=np.int32); r2[:n_rec] = rec_start[:n_rec]; rec_start = r2
        r2 = np.empty(rec_cap, dtype=np.int32); r2[:n_rec] = rec_prev[:n_rec]; rec_prev = r2
    rec_node[n_rec] = c_node[best_j]
    rec_start[n_rec] = c_start[best_j]
    rec_prev[n_rec] = c_bp[best_j]
    n_rec += 1
    return rec_node[:n_rec], rec_start[:n_rec], rec_prev[:n_rec], n_rec - 1, best, reached, max_tokens
