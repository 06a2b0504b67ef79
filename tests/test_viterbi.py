"""Banded Viterbi: brute force on small graphs, a known answer, too-short utterances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from asrkd.align import viterbi as vit
from asrkd.align.aligner import AlignFailure, align_loglik
from asrkd.align.graph import Graph, csr_edges

NEG = -np.inf


def _graph(n: int, skips: dict[int, int | list[int]], starts: list[int], finals: list[int], rng: np.random.Generator,
           no_enter: tuple[int, ...] = ()) -> Graph:
    """A random left-to-right graph of n nodes (node j emits column j); ``skips``: node -> its
    extra predecessor(s); ``no_enter``: nodes without the edge from j - 1."""
    enter = np.log(rng.uniform(0.1, 1.0, n)).astype(np.float32)
    enter[0] = NEG
    enter[list(no_enter)] = NEG
    src, dst = [], []
    for j, s in skips.items():
        for a in ([s] if isinstance(s, int) else s):
            src.append(a)
            dst.append(j)
    extra_start, extra_src, extra_lp = csr_edges(n, src, dst, list(np.log(rng.uniform(0.1, 1.0, len(src)))))
    start = np.full(n, NEG, dtype=np.float32)
    start[starts] = np.log(rng.uniform(0.1, 1.0, len(starts)))
    final = np.full(n, NEG, dtype=np.float32)
    final[finals] = np.log(rng.uniform(0.1, 1.0, len(finals)))
    return Graph(
        node_class=np.arange(n, dtype=np.int32), node_word=np.zeros(n, np.int32),
        node_unit=np.zeros(n, np.int32), self_lp=np.log(rng.uniform(0.1, 1.0, n)).astype(np.float32),
        enter_lp=enter, extra_start=extra_start, extra_src=extra_src, extra_lp=extra_lp, start_lp=start, final_lp=final,
        unit_ids=[], word_lengths=[],
    )


def _args(g: Graph) -> tuple:
    return (g.node_class, g.self_lp, g.enter_lp, g.extra_start, g.extra_src, g.extra_lp, g.start_lp, g.final_lp)


def _brute(ll: np.ndarray, g: Graph) -> tuple[float, np.ndarray | None]:
    T, n = ll.shape[0], g.num_nodes
    best, arg = -np.inf, None
    for p in itertools.product(range(n), repeat=T):
        s = vit.path_score(ll, *_args(g), np.asarray(p, dtype=np.int32))
        if s > best:
            best, arg = s, np.asarray(p)
    return best, arg


@pytest.mark.parametrize("seed", range(12))
def test_viterbi_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    T = int(rng.integers(1, 7))
    # Optional-silence shape: a skip over one or two nodes, several starts and ends; variant
    # shape: a node with two extra predecessors and no edge from the node before it.
    skips: dict[int, int | list[int]] = {}
    no_enter: tuple[int, ...] = ()
    if n >= 4:
        skips[n - 1] = int(rng.integers(0, n - 2))
    if n >= 5 and seed % 2:
        skips[n - 2] = [0, 1]
        no_enter = (n - 2,)
    starts = [0] + ([1] if n > 2 and rng.random() < 0.5 else [])
    finals = [n - 1] + ([n - 2] if rng.random() < 0.5 else [])
    g = _graph(n, skips, starts, finals, rng, no_enter)
    ll = rng.normal(0, 2, (T, n)).astype(np.float32)
    want, want_path = _brute(ll, g)
    path = np.zeros(T, dtype=np.int32)
    got = vit.viterbi(ll, *_args(g), path)
    if want_path is None:
        assert got == -np.inf
        return
    assert got == pytest.approx(want, rel=1e-5, abs=1e-4)
    # The returned path really has the returned score.
    assert vit.path_score(ll, *_args(g), path) == pytest.approx(got, rel=1e-5, abs=1e-4)


def test_known_answer_three_states() -> None:
    """Frames 0-1 clearly state 0, frames 2-4 state 1, frame 5 state 2."""
    rng = np.random.default_rng(0)
    g = _graph(3, {}, [0], [2], rng)
    g.self_lp[:] = np.log(0.5)
    g.enter_lp[1:] = np.log(0.5)
    g.start_lp[0] = 0.0
    g.final_lp[2] = 0.0
    truth = np.array([0, 0, 1, 1, 1, 2])
    ll = np.full((6, 3), -10.0, dtype=np.float32)
    ll[np.arange(6), truth] = 0.0
    ali = align_loglik(ll, g)
    np.testing.assert_array_equal(ali.classes, truth)
    assert ali.score == pytest.approx(5 * np.log(0.5))


def test_banded_equals_full_on_long_chain() -> None:
    """A long chain: the band never drops the best path (compare with a plain full trellis)."""
    rng = np.random.default_rng(3)
    n, T = 40, 90
    g = _graph(n, {10: 7, 25: 21, 31: [27, 29]}, [0, 3], [n - 1, n - 4], rng, no_enter=(31,))
    ll = rng.normal(0, 3, (T, n)).astype(np.float32)
    path = np.zeros(T, dtype=np.int32)
    got = vit.viterbi(ll, *_args(g), path)
    # Plain dynamic programming over all cells.
    D = np.full((T, n), -np.inf)
    D[0] = g.start_lp + ll[0]
    for t in range(1, T):
        for j in range(n):
            c = [D[t - 1, j] + g.self_lp[j]]
            if j > 0:
                c.append(D[t - 1, j - 1] + g.enter_lp[j])
            for k in range(g.extra_start[j], g.extra_start[j + 1]):
                c.append(D[t - 1, g.extra_src[k]] + g.extra_lp[k])
            D[t, j] = max(c) + ll[t, j]
    assert got == pytest.approx(float(np.max(D[-1] + g.final_lp)), rel=1e-6)


def test_too_short_utterance_is_refused() -> None:
    rng = np.random.default_rng(0)
    g = _graph(5, {}, [0], [4], rng)
    with pytest.raises(AlignFailure, match="too-short: 3 frames < 5"):
        align_loglik(np.zeros((3, 5), dtype=np.float32), g)
    # Exactly long enough: one frame per node.
    ali = align_loglik(np.zeros((5, 5), dtype=np.float32), g)
    np.testing.assert_array_equal(ali.nodes, np.arange(5))


def test_realignment_with_posteriors(tmp_path) -> None:
    """Any model aligns through the same code: scaled likelihoods from frame posteriors."""
    from asrkd.align.aligner import scaled_loglik
    from asrkd.align.flatstart import align_utterances
    from asrkd.align.graph import build_graph
    from asrkd.lang.inventory import LangConfig, make_lang

    lang = make_lang(["AB"], tmp_path / "lang", LangConfig(unit_type="grapheme", states_per_unit=1, sil_states=1))
    g = build_graph(lang, lang.transcript_units("AB"))
    sil, a, b = 0, lang.unit_offset[lang.unit_id("A")], lang.unit_offset[lang.unit_id("B")]
    truth = np.array([sil, sil, a, a, a, b, b, sil])
    post = np.full((truth.size, lang.num_classes), 0.05)
    post[np.arange(truth.size), truth] = 0.9
    prior = np.full(lang.num_classes, 1.0 / lang.num_classes)
    ll = scaled_loglik(np.log(post), np.log(prior), acoustic_scale=1.0)
    alis, failed = align_utterances(["u"], {"u": g}, lambda u, classes: ll[:, classes])
    assert not failed
    np.testing.assert_array_equal(alis["u"].classes, truth)
