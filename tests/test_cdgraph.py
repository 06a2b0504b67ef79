"""The context-dependent utterance graph: both boundary variants, only consistent paths, and the
context-independent graph as the special case."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from asrkd.align import viterbi as vit
from asrkd.align.aligner import align_loglik
from asrkd.align.graph import build_graph
from asrkd.align.triphone import project_path
from asrkd.lang.inventory import Lang, LangConfig, make_lang
from asrkd.lang.tree import BOUNDARY, MonophoneTree


class EdgeTree:
    """A planted context-dependent tree: the units in ``dep`` get another pdf next to silence or
    an utterance edge, per side (4 pdfs per unit state); the others ignore context."""

    def __init__(self, lang: Lang, dep: set[int]) -> None:
        self.num_units = len(lang.units)
        self.unit_states = np.asarray(lang.unit_num_states, dtype=np.int32)
        self._mono = MonophoneTree(lang)
        self._dep = np.zeros(self.num_units, dtype=bool)
        self._dep[list(dep)] = True
        self._c = lang.num_classes
        self.num_pdfs = 4 * lang.num_classes

    def pdfs(self, left, unit, right, state):  # noqa: ANN001, ANN201
        base = self._mono.pdfs(left, unit, right, state)
        left, right = np.asarray(left), np.asarray(right)
        edge = lambda x: (x == 0) | (x == BOUNDARY)  # noqa: E731
        k = np.where(self._dep[np.asarray(unit)], edge(left) * 1 + edge(right) * 2, 0)
        return (base + self._c * k).astype(np.int32)


@pytest.fixture(scope="module")
def lang(tmp_path_factory: pytest.TempPathFactory) -> Lang:
    d = tmp_path_factory.mktemp("lang")
    return make_lang(["AB C DA"], d / "lang", LangConfig(unit_type="grapheme", states_per_unit=2, sil_states=1))


def _contexts(words: list[list[int]], sil: list[bool]) -> list[tuple[int, int, int]]:
    """The (left, unit, right) of every segment of the path with silences ``sil``, written out
    directly (independent of the graph builder)."""
    seq: list[int] = []
    for i, w in enumerate(words):
        if sil[i]:
            seq.append(0)
        seq += w
    if sil[len(words)]:
        seq.append(0)
    return [(seq[k - 1] if k else BOUNDARY, u, seq[k + 1] if k + 1 < len(seq) else BOUNDARY) for k, u in enumerate(seq)]


def _chain_pdfs(lang: Lang, tree: EdgeTree, words: list[list[int]], sil: list[bool]) -> list[int]:
    out = []
    for left, u, right in _contexts(words, sil):
        for s in range(int(lang.unit_num_states[u])):
            out.append(int(tree.pdfs(np.array([left]), np.array([u]), np.array([right]), np.array([s]))[0]))
    return out


def test_boundary_variants_present_and_consistent(lang: Lang) -> None:
    words = lang.transcript_units("AB C DA")
    tree = EdgeTree(lang, set(range(1, len(lang.units))))
    g = build_graph(lang, words, tree=tree)
    a, b, c, d = (lang.unit_id(x) for x in "ABCD")
    off = lang.unit_offset
    present = set(g.node_class.tolist())
    C = lang.num_classes
    # The first A starts the utterance: silence or the edge on its left either way (k=1), so
    # it has one variant; the last A ends it (k=2).
    assert off[a] + C in present and off[a] + 2 * C in present and off[a] not in present
    # B (word-final, before C): right context silence (k=2) or C itself (k=0).
    assert {off[b] + 0, off[b] + 2 * C} <= present
    # C (one-unit word between two words): all four (left, right) combinations.
    assert {off[c] + k * C for k in range(4)} <= present
    # D (first unit of the last word): after silence (k=1) or after C (k=0).
    assert {off[d] + 0, off[d] + C} <= present
    # Every choice of silences walks the pdfs its contexts give.
    for sil in itertools.product([False, True], repeat=len(words) + 1):
        chain = g.chain(list(sil))
        assert g.node_class[chain].tolist() == _chain_pdfs(lang, tree, words, list(sil))
        # ... and that walk is a path of the graph (each step an edge).
        ll = np.zeros((chain.size, g.num_nodes), dtype=np.float32)
        assert np.isfinite(vit.path_score(ll, np.arange(g.num_nodes, dtype=np.int32), g.self_lp, g.enter_lp,
                                          g.extra_start, g.extra_src, g.extra_lp, g.start_lp, g.final_lp, chain))


def _best_consistent(ll: np.ndarray, g, words) -> float:  # noqa: ANN001
    """Best score over the consistent paths only: per silence pattern, the best segmentation of
    the frames over its chain (each node at least one frame), with the graph's transitions."""
    T = ll.shape[0]
    best = -np.inf
    for sil in itertools.product([False, True], repeat=len(words) + 1):
        chain = g.chain(list(sil))
        L = chain.size
        if L > T:
            continue

        def step(x: int, y: int) -> float:
            lp = g.enter_lp[y] if y == x + 1 else -np.inf
            for k in range(g.extra_start[y], g.extra_start[y + 1]):
                if g.extra_src[k] == x:
                    lp = max(lp, g.extra_lp[k])
            return lp

        D = np.full((T, L), -np.inf)
        D[0, 0] = g.start_lp[chain[0]] + ll[0, g.node_class[chain[0]]]
        for t in range(1, T):
            for i in range(L):
                c = D[t - 1, i] + g.self_lp[chain[i]]
                if i:
                    c = max(c, D[t - 1, i - 1] + step(chain[i - 1], chain[i]))
                D[t, i] = c + ll[t, g.node_class[chain[i]]]
        best = max(best, D[T - 1, L - 1] + g.final_lp[chain[-1]])
    return best


@pytest.mark.parametrize("seed,text", [(s, t) for s in range(4) for t in ("AB C DA", "C A DB", "B C")])
def test_viterbi_takes_only_consistent_paths(lang: Lang, seed: int, text: str) -> None:
    """The best path of the graph is the best consistent path: no path mixes a word's exit
    into silence with the next word's direct entry, and none is missing."""
    rng = np.random.default_rng(seed)
    words = lang.transcript_units(text)
    tree = EdgeTree(lang, {lang.unit_id(x) for x in ("A", "B", "C")})
    g = build_graph(lang, words, tree=tree)
    T = int(rng.integers(14, 22))
    ll = rng.normal(0, 2, (T, tree.num_pdfs)).astype(np.float32)
    ali = align_loglik(ll, g)
    assert ali.score == pytest.approx(_best_consistent(ll, g, words), rel=1e-5, abs=1e-4)


def test_monophone_tree_gives_todays_graph_and_alignment(lang: Lang) -> None:
    """With the context-independent tree the variants merge into one chain (the graph of the
    monophone system); keeping them all (merge=False) gives the same alignments."""
    rng = np.random.default_rng(0)
    words = lang.transcript_units("AB C DA")
    merged = build_graph(lang, words)
    full = build_graph(lang, words, merge=False)
    # One node per unit state and silence slot: 3 silences x 1 + 5 units x 2 ... + 1 more silence.
    assert merged.num_nodes == 4 * 1 + 5 * 2
    assert full.num_nodes > merged.num_nodes
    for _ in range(20):
        T = int(rng.integers(10, 40))
        ll = rng.normal(0, 3, (T, lang.num_classes)).astype(np.float32)
        a, b = align_loglik(ll, merged), align_loglik(ll, full)
        np.testing.assert_array_equal(a.classes, b.classes)
        assert a.score == pytest.approx(b.score, abs=1e-9)


def test_project_path_keeps_the_walk(lang: Lang) -> None:
    words = lang.transcript_units("AB C DA")
    mono = build_graph(lang, words)
    tree = EdgeTree(lang, set(range(1, len(lang.units))))
    tri = build_graph(lang, words, tree=tree)
    rng = np.random.default_rng(1)
    ll = rng.normal(0, 3, (30, lang.num_classes)).astype(np.float32)
    path = align_loglik(ll, mono).nodes
    moved = project_path(mono, path, tri)
    np.testing.assert_array_equal(tri.node_unit[moved], mono.node_unit[path])
    np.testing.assert_array_equal(tri.node_sil[moved], mono.node_sil[path])
    np.testing.assert_array_equal(tri.node_state[moved], mono.node_state[path])
    # The projected path is a path of the triphone graph.
    z = np.zeros((path.size, tri.num_nodes), dtype=np.float32)
    assert np.isfinite(vit.path_score(z, np.arange(tri.num_nodes, dtype=np.int32), tri.self_lp, tri.enter_lp,
                                      tri.extra_start, tri.extra_src, tri.extra_lp, tri.start_lp, tri.final_lp, moved))


def test_empty_transcript_and_one_word(tmp_path: Path, lang: Lang) -> None:
    tree = EdgeTree(lang, set(range(1, len(lang.units))))
    g = build_graph(lang, [], tree=tree)
    assert g.num_nodes == 1 and g.min_frames() == 1
    g = build_graph(lang, lang.transcript_units("C"), tree=tree)
    # One-unit word alone: entry after silence or at the edge x exit likewise; both sides
    # look the same to this tree (edge ~ silence), so the variants merge into one chain.
    assert g.min_frames() == 2
    for sil in itertools.product([False, True], repeat=2):
        assert g.node_class[g.chain(list(sil))].tolist() == _chain_pdfs(lang, tree, lang.transcript_units("C"), list(sil))


def test_graph_contexts_are_the_tree_statistics_contexts(lang: Lang) -> None:
    """A monophone alignment carried onto the context-dependent graph gets, frame by frame, the
    pdf the tree gives the frame's context as the tree statistics see it (frame_contexts)."""
    from asrkd.align.contexts import frame_contexts

    tree = EdgeTree(lang, set(range(1, len(lang.units))))
    rng = np.random.default_rng(3)
    for text in ("AB C DA", "C A DB", "B C"):
        words = lang.transcript_units(text)
        mono, tri = build_graph(lang, words), build_graph(lang, words, tree=tree)
        for _ in range(5):
            ll = rng.normal(0, 3, (int(rng.integers(16, 40)), lang.num_classes)).astype(np.float32)
            ali = align_loglik(ll, mono)
            want = tree.pdfs(*frame_contexts(ali.classes, lang))
            np.testing.assert_array_equal(tri.node_class[project_path(mono, ali.nodes, tri)], want)
