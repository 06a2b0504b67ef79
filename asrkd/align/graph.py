"""The state graph of one utterance: its units' context-dependent HMM states in order, with
optional silence between words.

Layout (``[sil]`` = the silence unit's states, optional)::

    [sil] w1-u1 w1-u2 ... w1-uK [sil] w2-u1 ... wn-uK [sil]

Every node is one HMM state of a unit in its context; its class is the pdf that the tree
(:class:`asrkd.lang.tree.ContextTree`) gives for ``(left, unit, right, state)``. Inside a word the
contexts are fixed. At a word boundary they depend on the path: with the optional silence taken,
the word-final unit's right context and the next word's first unit's left context are silence;
skipped, they are each other (at the utterance's edges: :data:`~asrkd.lang.tree.BOUNDARY`). So a
word's first unit comes in two *entry variants* (after silence / direct) and its last unit in two
*exit variants* (before silence / direct); a one-unit word in up to four. A variant block is only
made where the tree gives it other pdfs than its sibling, so a tree that ignores context (the
monophone inventory) gives one chain, the graph of the context-independent system. Edges keep
variants consistent: an exit-to-silence block leads only into the silence, a direct exit only
into the next word's direct entry.

Each node has a self-loop and an edge from the node before it (``enter_lp``, -inf where that node
is not a predecessor); the other predecessors (the skip over an optional silence, the edges
between variant blocks) are *extra edges*, stored by destination (CSR: ``extra_start``,
``extra_src``, ``extra_lp``). Silence probabilities come from the lang (``sil_prob``), HMM
transitions from its topology. An empty transcript gives a graph of silence only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from asrkd.align import viterbi as vit
from asrkd.lang.inventory import Lang
from asrkd.lang.tree import BOUNDARY, ContextTree, MonophoneTree

NEG_INF = float("-inf")

SIL, DIRECT, ANY = 0, 1, -1  # variant keys: entry/exit through the silence, direct, either


@dataclass
class Graph:
    """Arrays are ``(N,)``, one entry per node, nodes in topological order (every edge goes
    from a lower to a higher node, self-loops aside)."""

    node_class: np.ndarray  # int32 class (pdf) id
    node_word: np.ndarray  # int32 word index, -1 for silence
    node_unit: np.ndarray  # int32 position of the node's unit in the utterance's unit sequence, -1 for silence
    self_lp: np.ndarray  # float32 self-loop log-prob
    enter_lp: np.ndarray  # float32 log-prob of edge j-1 -> j (-inf: none)
    extra_start: np.ndarray  # (N + 1,) int32: node j's extra in-edges are extra_start[j] .. extra_start[j+1]-1
    extra_src: np.ndarray  # (E,) int32 source node of each extra edge
    extra_lp: np.ndarray  # (E,) float32 log-prob of each extra edge
    start_lp: np.ndarray  # float32 log-prob of starting in the node (-inf: not a start)
    final_lp: np.ndarray  # float32 log-prob of ending in the node (-inf: not an end)
    unit_ids: list[int]  # the utterance's unit sequence (silence excluded)
    word_lengths: list[int]  # units per word
    node_sil: np.ndarray | None = None  # int32 silence slot (0 leading .. n trailing), -1 for unit nodes
    node_state: np.ndarray | None = None  # int32 HMM state of the node inside its unit
    # Per unit position: [(entry key, exit key, first node, nodes)] of its variant blocks; per
    # silence slot: (first node, nodes). Used to walk one path for a choice of silences (chain()).
    unit_variants: list[list[tuple[int, int, int, int]]] = field(default_factory=list, repr=False)
    sil_blocks: list[tuple[int, int]] = field(default_factory=list, repr=False)

    @property
    def num_nodes(self) -> int:
        return int(self.node_class.shape[0])

    def min_frames(self) -> int:
        """Fewest frames a complete path needs (shorter utterances cannot be aligned)."""
        return int(vit.min_frames(self.start_lp, self.enter_lp, self.final_lp, self.extra_start, self.extra_src))

    def chain(self, sil: list[bool] | np.ndarray) -> np.ndarray:
        """Nodes of the one path that takes silence slot ``i`` iff ``sil[i]`` (``n + 1`` slots
        for ``n`` words; an empty transcript has one slot, always taken), each node once, in
        order -> ``(L,)`` int32."""
        n = len(self.word_lengths)
        if len(sil) != n + 1:
            raise ValueError(f"{len(sil)} silence flags for {n} words (need {n + 1})")
        if n == 0:
            return np.arange(self.num_nodes, dtype=np.int32)
        out: list[np.ndarray] = []
        pos = 0
        for i in range(n + 1):
            if sil[i]:
                first, size = self.sil_blocks[i]
                out.append(np.arange(first, first + size))
            if i == n:
                break
            e = SIL if sil[i] else DIRECT
            x = SIL if sil[i + 1] else DIRECT
            for _ in range(self.word_lengths[i]):
                first, size = next((f, s) for ve, vx, f, s in self.unit_variants[pos]
                                   if ve in (ANY, e) and vx in (ANY, x))
                out.append(np.arange(first, first + size))
                pos += 1
        return np.concatenate(out).astype(np.int32)


def csr_edges(n: int, src: list[int], dst: list[int], lp: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extra edges ``src[k] -> dst[k]`` (log-prob ``lp[k]``) of an ``n``-node graph, grouped by
    destination -> ``(extra_start (n+1,), extra_src (E,), extra_lp (E,))``."""
    d = np.asarray(dst, dtype=np.int64)
    order = np.argsort(d, kind="stable")
    start = np.zeros(n + 1, dtype=np.int32)
    np.add.at(start, d + 1, 1)
    return (np.cumsum(start).astype(np.int32), np.asarray(src, dtype=np.int32)[order],
            np.asarray(lp, dtype=np.float32)[order])


@dataclass
class _Block:
    """A run of nodes: one unit (variant) or one silence."""

    pdfs: np.ndarray  # (S,) pdf of each state
    word: int  # -1 for silence
    pos: int  # unit position, -1 for silence
    slot: int  # silence slot, -1 for units
    entry: int = ANY
    exit: int = ANY
    first: int = -1  # first node, once laid out


def build_graph(lang: Lang, words_units: list[list[int]], sil_prob: float | None = None,
                tree: ContextTree | None = None, merge: bool = True) -> Graph:
    """Graph for an utterance whose words have unit ids ``words_units`` (lang.transcript_units).

    ``tree``: the pdfs of the unit states in context (default: the lang's context-independent
    inventory). ``merge=False`` keeps every boundary variant even where its pdfs equal its
    sibling's (the same best paths; for tests)."""
    tree = MonophoneTree(lang) if tree is None else tree
    q = lang.sil_prob if sil_prob is None else sil_prob
    log_q, log_nq = math.log(q), math.log1p(-q)
    self_c = math.log(lang.self_loop_prob)
    fwd_c = math.log1p(-lang.self_loop_prob)
    nst = np.asarray(tree.unit_states, dtype=np.int64)
    sil_u = lang.silence_unit
    n = len(words_units)
    unit_ids = [u for wu in words_units for u in wu]
    firsts = [wu[0] for wu in words_units]
    lasts = [wu[-1] for wu in words_units]

    # Every (left, unit, right) the graph may need, looked up in one vectorised call: per unit
    # position its four (entry, exit) contexts, then the n + 1 silences.
    ctx: list[tuple[int, int, int]] = []
    for i, wu in enumerate(words_units):
        for k, u in enumerate(wu):
            for e in (SIL, DIRECT):
                for x in (SIL, DIRECT):
                    left = wu[k - 1] if k > 0 else (sil_u if e == SIL else (lasts[i - 1] if i > 0 else BOUNDARY))
                    right = wu[k + 1] if k + 1 < len(wu) else (sil_u if x == SIL else (firsts[i + 1] if i + 1 < n else BOUNDARY))
                    ctx.append((left, u, right))
    for i in range(n + 1):
        ctx.append((lasts[i - 1] if i > 0 else BOUNDARY, sil_u, firsts[i] if i < n else BOUNDARY))
    c = np.asarray(ctx, dtype=np.int64).reshape(-1, 3)
    reps = nst[c[:, 1]]
    states = np.concatenate([np.arange(r) for r in reps]) if len(reps) else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(c)), reps)
    pdf_flat = np.asarray(tree.pdfs(c[rows, 0], c[rows, 1], c[rows, 2], states), dtype=np.int32)
    offs = np.concatenate([[0], np.cumsum(reps)])

    def pdfs_of(r: int) -> np.ndarray:
        return pdf_flat[offs[r]:offs[r + 1]]

    # Blocks in layout order; unit variants only where the pdfs differ (unless merge=False).
    blocks: list[_Block] = []
    sil_blocks: list[_Block] = []
    pos_blocks: list[list[_Block]] = []
    n_unit_rows = 4 * len(unit_ids)

    def add_sil(i: int) -> None:
        b = _Block(pdfs_of(n_unit_rows + i), -1, -1, i)
        blocks.append(b)
        sil_blocks.append(b)

    add_sil(0)
    pos = 0
    for i, wu in enumerate(words_units):
        if i > 0:
            add_sil(i)
        for k in range(len(wu)):
            seq = {(e, x): pdfs_of(4 * pos + 2 * e + x) for e in (SIL, DIRECT) for x in (SIL, DIRECT)}
            dep_e = not merge or any(not np.array_equal(seq[SIL, x], seq[DIRECT, x]) for x in (SIL, DIRECT))
            dep_x = not merge or any(not np.array_equal(seq[e, SIL], seq[e, DIRECT]) for e in (SIL, DIRECT))
            # A variant only exists on the side the unit touches (first / last unit of the word).
            dep_e = dep_e and k == 0
            dep_x = dep_x and k == len(wu) - 1
            es = (SIL, DIRECT) if dep_e else (ANY,)
            xs = (SIL, DIRECT) if dep_x else (ANY,)
            # Order: a direct exit first, the exit into silence last (just before the silence
            # block: its edge is then the plain j-1 edge); entry from silence before direct.
            variants = sorted(((e, x) for e in es for x in xs), key=lambda v: (v[1] == SIL, v[0] == DIRECT))
            mine = []
            for e, x in variants:
                b = _Block(seq[max(e, 0), max(x, 0)], i, pos, -1, e, x)
                blocks.append(b)
                mine.append(b)
            pos_blocks.append(mine)
            pos += 1
    if n:
        add_sil(n)

    # Layout.
    num = 0
    for b in blocks:
        b.first = num
        num += b.pdfs.shape[0]
    node_class = np.concatenate([b.pdfs for b in blocks]).astype(np.int32)
    node_word = np.concatenate([np.full(b.pdfs.shape[0], b.word, np.int32) for b in blocks])
    node_unit = np.concatenate([np.full(b.pdfs.shape[0], b.pos, np.int32) for b in blocks])
    node_sil = np.concatenate([np.full(b.pdfs.shape[0], b.slot, np.int32) for b in blocks])
    node_state = np.concatenate([np.arange(b.pdfs.shape[0], dtype=np.int32) for b in blocks])
    self_lp = np.full(num, self_c, dtype=np.float32)
    enter_lp = np.full(num, NEG_INF, dtype=np.float32)
    start_lp = np.full(num, NEG_INF, dtype=np.float32)
    final_lp = np.full(num, NEG_INF, dtype=np.float32)
    ex_src: list[int] = []
    ex_dst: list[int] = []
    ex_lp: list[float] = []

    def last(b: _Block) -> int:
        return b.first + b.pdfs.shape[0] - 1

    def edge(a: _Block, b: _Block, lp: float) -> None:
        s, d = last(a), b.first
        if s == d - 1:
            enter_lp[d] = lp
        else:
            ex_src.append(s)
            ex_dst.append(d)
            ex_lp.append(lp)

    for b in blocks:  # inside a block: plain forward edges
        enter_lp[b.first + 1:last(b) + 1] = fwd_c

    def ok(key: int, want: int) -> bool:
        return key in (ANY, want)

    if n == 0:
        start_lp[0] = 0.0
        final_lp[num - 1] = 0.0
    else:
        start_lp[sil_blocks[0].first] = log_q
        final_lp[last(sil_blocks[-1])] = log_q
        pos = 0
        for i, wu in enumerate(words_units):
            first_b, last_b = pos_blocks[pos], pos_blocks[pos + len(wu) - 1]
            for b in first_b:
                if ok(b.entry, SIL):  # the silence before the word -> its entry after silence
                    edge(sil_blocks[i], b, fwd_c)
                if ok(b.entry, DIRECT):
                    if i == 0:
                        start_lp[b.first] = log_nq
                    else:  # the previous word's direct exits, skipping the optional silence
                        for a in pos_blocks[pos - 1]:
                            if ok(a.exit, DIRECT):
                                edge(a, b, fwd_c + log_nq)
            for p in range(pos + 1, pos + len(wu)):
                for a in pos_blocks[p - 1]:
                    for b in pos_blocks[p]:
                        if (ANY in (a.entry, b.entry) or a.entry == b.entry) and \
                                (ANY in (a.exit, b.exit) or a.exit == b.exit):
                            edge(a, b, fwd_c)
            for a in last_b:
                if ok(a.exit, SIL):  # into the silence after the word (its cost q: on the final for the last)
                    edge(a, sil_blocks[i + 1], fwd_c + (log_q if i + 1 < n else 0.0))
                if ok(a.exit, DIRECT) and i + 1 == n:
                    final_lp[last(a)] = log_nq
            pos += len(wu)
    extra_start, extra_src, extra_lp = csr_edges(num, ex_src, ex_dst, ex_lp)
    return Graph(
        node_class=node_class,
        node_word=node_word,
        node_unit=node_unit,
        self_lp=self_lp,
        enter_lp=enter_lp,
        extra_start=extra_start,
        extra_src=extra_src,
        extra_lp=extra_lp,
        start_lp=start_lp,
        final_lp=final_lp,
        unit_ids=unit_ids,
        word_lengths=[len(w) for w in words_units],
        node_sil=node_sil,
        node_state=node_state,
        unit_variants=[[(b.entry, b.exit, b.first, b.pdfs.shape[0]) for b in bs] for bs in pos_blocks],
        sil_blocks=[(b.first, b.pdfs.shape[0]) for b in sil_blocks],
    )
