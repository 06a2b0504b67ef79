"""The state graph of one utterance: its units' HMM states in order, with optional silence.

Layout (``[sil]`` = the silence unit's states, optional)::

    [sil] w1-u1-s0 w1-u1-s1 ... w1-uK-s2 [sil] w2-u1-s0 ... wn-uK-s2 [sil]

Each node has a self-loop, an edge from the node before it, and - for the first node of a word
after an optional silence - a *skip* edge from the last node of the previous word. A path may
start in the leading silence or in the first word, and end in the last word or the trailing
silence. Silence probabilities come from the lang (``sil_prob``), HMM transitions from its
topology. An empty transcript gives a graph of silence only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asrkd.align import viterbi as vit
from asrkd.lang.inventory import Lang

NEG_INF = float("-inf")


@dataclass
class Graph:
    """Arrays are ``(N,)``, one entry per node, nodes in topological order."""

    node_class: np.ndarray  # int32 class id
    node_word: np.ndarray  # int32 word index, -1 for silence
    node_unit: np.ndarray  # int32 position of the node's unit in the utterance's unit sequence, -1 for silence
    self_lp: np.ndarray  # float32 self-loop log-prob
    enter_lp: np.ndarray  # float32 log-prob of edge j-1 -> j (-inf: none)
    skip_src: np.ndarray  # int32 skip predecessor (-1: none)
    skip_lp: np.ndarray  # float32 log-prob of the skip edge
    start_lp: np.ndarray  # float32 log-prob of starting in the node (-inf: not a start)
    final_lp: np.ndarray  # float32 log-prob of ending in the node (-inf: not an end)
    unit_ids: list[int]  # the utterance's unit sequence (silence excluded)
    word_lengths: list[int]  # units per word

    @property
    def num_nodes(self) -> int:
        return int(self.node_class.shape[0])

    def min_frames(self) -> int:
        """Fewest frames a complete path needs (shorter utterances cannot be aligned)."""
        return int(vit.min_frames(self.start_lp, self.final_lp, self.skip_src))


def build_graph(lang: Lang, words_units: list[list[int]], sil_prob: float | None = None) -> Graph:
    """Graph for an utterance whose words have unit ids ``words_units`` (lang.transcript_units)."""
    q = lang.sil_prob if sil_prob is None else sil_prob
    log_q, log_nq = math.log(q), math.log1p(-q)
    self_c = math.log(lang.self_loop_prob)
    fwd_c = math.log1p(-lang.self_loop_prob)
    classes: list[int] = []
    words: list[int] = []
    unit_pos: list[int] = []
    # Node indices of silence blocks and word first/last nodes, for the special edges.
    sil_blocks: list[tuple[int, int]] = []  # (first, last) node of each silence block

    def add_unit(u: int, w: int, pos: int) -> None:
        o = int(lang.unit_offset[u])
        for k in range(int(lang.unit_num_states[u])):
            classes.append(o + k)
            words.append(w)
            unit_pos.append(pos)

    def add_sil() -> None:
        first = len(classes)
        add_unit(lang.silence_unit, -1, -1)
        sil_blocks.append((first, len(classes) - 1))

    unit_ids = [u for wu in words_units for u in wu]
    add_sil()
    word_first: list[int] = []
    pos = 0
    for wi, wu in enumerate(words_units):
        if wi > 0:
            add_sil()
        word_first.append(len(classes))
        for u in wu:
            add_unit(u, wi, pos)
            pos += 1
    if words_units:
        add_sil()
    n = len(classes)
    self_lp = np.full(n, self_c, dtype=np.float32)
    enter_lp = np.full(n, fwd_c, dtype=np.float32)
    enter_lp[0] = NEG_INF
    skip_src = np.full(n, -1, dtype=np.int32)
    skip_lp = np.full(n, NEG_INF, dtype=np.float32)
    start_lp = np.full(n, NEG_INF, dtype=np.float32)
    final_lp = np.full(n, NEG_INF, dtype=np.float32)
    if not words_units:
        start_lp[0] = 0.0
        final_lp[n - 1] = 0.0
    else:
        lead, trail = sil_blocks[0], sil_blocks[-1]
        start_lp[lead[0]] = log_q
        start_lp[word_first[0]] = log_nq
        enter_lp[word_first[0]] = fwd_c  # leading silence -> first word
        final_lp[trail[1]] = log_q
        final_lp[trail[0] - 1] = log_nq
        # Entering the trailing silence from the last word's last state.
        enter_lp[trail[0]] = fwd_c
        for (first, last), wf in zip(sil_blocks[1:-1], word_first[1:]):
            # previous word's last node = first - 1
            enter_lp[first] = fwd_c + log_q
            skip_src[wf] = first - 1
            skip_lp[wf] = fwd_c + log_nq
    return Graph(
        node_class=np.asarray(classes, dtype=np.int32),
        node_word=np.asarray(words, dtype=np.int32),
        node_unit=np.asarray(unit_pos, dtype=np.int32),
        self_lp=self_lp,
        enter_lp=enter_lp,
        skip_src=skip_src,
        skip_lp=skip_lp,
        start_lp=start_lp,
        final_lp=final_lp,
        unit_ids=unit_ids,
        word_lengths=[len(w) for w in words_units],
    )
