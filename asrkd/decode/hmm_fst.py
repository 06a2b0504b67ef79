"""H: context-dependent unit labels -> pdf sequences, with the lang's transition probabilities.

The input side of ``C o L o G`` is a list of *context windows* (``ilabel_info``, from kaldifst's
``compose_context``: per label, ``[left, centre, right]`` unit labels with 0 at an utterance edge,
or ``[-d]`` for the disambiguation symbol ``d``; with context width 1, ``[centre]``). For each
window H holds the centre unit's left-to-right HMM, its states' pdfs looked up in the tied-state
tree (:class:`asrkd.lang.tree.ContextTree`, ``BOUNDARY`` for an edge), so the same H serves the
context-independent inventory (:class:`MonophoneTree`) and a decision tree.

Input labels are *transition ids* plus one (0 is epsilon): a tid is one distinct
``(unit, HMM state, pdf, self-loop or entry)`` tuple, as Kaldi's transition model, so the 1-best
label sequence tells which unit and state each frame is in and where each unit starts (word times,
alignments) even when a tree shares a pdf between states or a unit follows itself; the decoder
reads the pdf column ``tid_pdf[label - 1]``. One window's HMM of S states, all through the
shared start state ``0`` (also the final state)::

    0 --e0+1 : window--> 1 (loop l0+1) --e1+1--> 2 (loop l1+1) ... S (loop) --eps--> 0

(``e_s``/``l_s``: the entry/self-loop tids of state s).

Every arc out of a state costs its transition: the self-loop ``-log p``, the move on (into the
next state or out of the unit) ``-log(1 - p)``, ``p = lang.self_loop_prob``; the arc into the
first state is free (the previous unit's exit paid for it).

**Self-loops are in H**, before determinisation, not added afterwards as Kaldi's
``add-self-loops`` does (which needs its transition model to split states whose incoming arcs
disagree): with one self-loop probability for every state the loops keep the twins property that
determinisation needs, and the build stays four library calls. Measured cost: graph.json's
``build_seconds`` and sizes.

Disambiguation windows (and C's ``#-1``, window ``[0]``) become self-loops on state 0 with input
label ``num_tids + 1 + index`` (replaced by epsilon after determinisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.lang.tree import BOUNDARY


def window_pdfs(tree, windows: np.ndarray, central: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """``windows: (N, W)`` unit labels (unit + 1; 0 = edge) -> ``pdfs: (N, Smax)`` (-1 past a unit's
    last state) and ``num_states: (N,)``."""
    units = windows - 1  # label 0 (an utterance edge) becomes -1 = BOUNDARY
    units[units < 0] = BOUNDARY
    centre = units[:, central]
    if np.any(centre < 0):
        raise AsrkdError("a context window has no centre unit")
    W = windows.shape[1]
    left = units[:, central - 1] if central > 0 else np.full(len(units), BOUNDARY)
    right = units[:, central + 1] if central + 1 < W else np.full(len(units), BOUNDARY)
    nstates = np.asarray(tree.unit_states, dtype=np.int64)[centre]
    pdfs = np.full((len(units), int(nstates.max(initial=0))), -1, dtype=np.int64)
    for s in range(pdfs.shape[1]):
        m = nstates > s
        pdfs[m, s] = tree.pdfs(left[m], centre[m], right[m], np.full(int(m.sum()), s))
    return pdfs, nstates


@dataclass
class Tids:
    """Transition ids: ``unit, state, pdf, loop: (N,)`` int32 (loop: 1 for a self-loop, 0 for
    the arc entering the state), one distinct tuple per tid."""

    unit: np.ndarray
    state: np.ndarray
    pdf: np.ndarray
    loop: np.ndarray

    def __len__(self) -> int:
        return len(self.pdf)


def hmm_fst(tree, ilabel_info: Sequence[Sequence[int]], central: int, self_loop_prob: float,  # noqa: ANN001
            disambig_labels: Sequence[int], min_state_frames: int = 1):  # noqa: ANN201
    """Build H (module docstring); returns ``(fst, tids)``. ``disambig_labels``: the
    disambiguation labels of L's input side, in order (``#d`` -> ``num_tids + 1 + index``).

    ``min_state_frames`` m > 1: every HMM state lasts at least m frames (as the unit-LM decoder's
    ``min_state_frames``): its first m - 1 frames are a chain of free forced moves (the entry tid,
    then the self-loop tid), the m-th carries the loop and the exit costs, so a unit of S states
    needs S x m frames and a short burst cannot pass for a whole word.
    """
    if min_state_frames < 1:
        raise AsrkdError(f"min_state_frames must be >= 1, got {min_state_frames}")
    import kaldifst

    if not 0.0 < self_loop_prob < 1.0:
        raise AsrkdError(f"self_loop_prob must be in (0, 1), got {self_loop_prob}")
    loop_cost, fwd_cost = -math.log(self_loop_prob), -math.log1p(-self_loop_prob)
    dis_index = {int(d): i for i, d in enumerate(disambig_labels)}
    phone_ids, windows, dis_arcs = [], [], []
    for i, info in enumerate(ilabel_info):
        if i == 0 or len(info) == 0:
            continue  # epsilon
        if len(info) == 1 and info[0] <= 0:
            # [-d]: disambiguation symbol d; [0]: C's own "#-1" (its epsilon arcs at the start),
            # which H passes through like one (an index after L's symbols).
            d = -int(info[0])
            if d and d not in dis_index:
                raise AsrkdError(f"context label {i} is disambiguation symbol {d}, unknown to H")
            dis_arcs.append((dis_index[d] if d else len(dis_index), i))
        else:
            phone_ids.append(i)
            windows.append(list(info))
    if not windows:
        raise AsrkdError("no unit windows to build H from")
    win = np.asarray(windows, dtype=np.int64)
    pdfs, nstates = window_pdfs(tree, win, central)
    centre = win[:, central] - 1
    # Distinct (unit, state, pdf) triples, through one int64 key per cell; each gives two tids,
    # 2k (entry) and 2k + 1 (self-loop).
    P = int(tree.num_pdfs)
    Smax = pdfs.shape[1]
    states = np.broadcast_to(np.arange(Smax), pdfs.shape)
    valid = pdfs >= 0
    key = (centre[:, None] * Smax + states) * P + pdfs
    uniq, inv = np.unique(key[valid], return_inverse=True)
    tid = np.full(pdfs.shape, -1, dtype=np.int64)
    tid[valid] = 2 * inv
    rep = np.repeat(uniq, 2)
    tids = Tids((rep // P // Smax).astype(np.int32), (rep // P % Smax).astype(np.int32),
                (rep % P).astype(np.int32), np.tile(np.array([0, 1], np.int32), len(uniq)))
    fst = kaldifst.StdVectorFst()
    start = fst.add_state()
    fst.start = start
    fst.set_final(start, 0.0)
    for d, i in dis_arcs:
        fst.add_arc(start, kaldifst.StdArc(len(tids) + 1 + d, i, 0.0, start))
    for i, row, n in zip(phone_ids, tid.tolist(), nstates.tolist()):
        prev = start
        for s in range(n):
            st = fst.add_state()
            # Entering state s: from the start (outputs the window) or from state s-1.
            fst.add_arc(prev, kaldifst.StdArc(row[s] + 1, i if s == 0 else 0, 0.0 if s == 0 else fwd_cost, st))
            for _ in range(min_state_frames - 1):  # forced frames of a minimum duration
                nxt = fst.add_state()
                fst.add_arc(st, kaldifst.StdArc(row[s] + 2, 0, 0.0, nxt))
                st = nxt
            fst.add_arc(st, kaldifst.StdArc(row[s] + 2, 0, loop_cost, st))
            prev = st
        fst.add_arc(prev, kaldifst.StdArc(0, 0, fwd_cost, start))
    return fst, tids
