"""Tree statistics and the tied-state decision tree (asrkd.align.treestats / questions / treebuild,
asrkd.lang.dtree) on synthetic frames with a planted context effect."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from asrkd.align.questions import cluster_units
from asrkd.align.treebuild import TreeConfig, build_tree, leaf_gmm
from asrkd.align.treestats import TreeStats, accumulate_tree_stats, gauss_loglik
from asrkd.errors import AsrkdError
from asrkd.lang.dtree import load_tree, save_tree, tied_fingerprint
from asrkd.lang.inventory import Lang, LangConfig, make_lang
from asrkd.lang.tree import BOUNDARY, MonophoneTree

D = 4
PLANTED_RIGHT = ("e", "f")  # the right contexts that shift the planted emissions
PLANTED = {("a", 0), ("a", 1), ("a", 2), ("b", 2)}  # (unit, state) whose emission depends on them
SHIFT = 2.0  # mean shift (in standard deviations, every dimension)


def _lang(tmp_path: Path) -> Lang:
    # "z" is in the inventory but never in the synthetic data (an unseen unit).
    return make_lang(["abcdefgh z"], tmp_path / "lang", LangConfig(unit_type="grapheme"))


def _corpus(lang: Lang, num_utts: int = 300, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Utterances <sil> u1 .. u8 <sil> of random units a..h: (class ids (T,), frames (T, D))."""
    rng = np.random.default_rng(seed)
    letters = [lang.unit_id(c) for c in "abcdefgh"]
    means = rng.normal(0.0, 3.0, (len(lang.units), 3, D))
    # e and f sound alike (the data-driven questions should find the class {e, f}).
    means[lang.unit_id("f")] = means[lang.unit_id("e")] + 0.05
    planted = {(lang.unit_id(u), s) for u, s in PLANTED}
    shift_ctx = {lang.unit_id(u) for u in PLANTED_RIGHT}
    out = []
    for _ in range(num_utts):
        seq = [0] + [int(u) for u in rng.choice(letters, 8)] + [0]
        classes, frames = [], []
        for i, u in enumerate(seq):
            right = seq[i + 1] if i + 1 < len(seq) else BOUNDARY
            for s in range(3):
                n = int(rng.integers(2, 6))
                mu = means[u, s] + (SHIFT if (u, s) in planted and right in shift_ctx else 0.0)
                frames.append(rng.normal(mu, 1.0, (n, D)))
                classes += [lang.unit_offset[u] + s] * n
        out.append((np.array(classes, dtype=np.int32), np.concatenate(frames).astype(np.float32)))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lang, list, TreeStats]:
    lang = _lang(tmp_path_factory.mktemp("tree"))
    corpus = _corpus(lang)
    return lang, corpus, accumulate_tree_stats(lang, corpus, D)


def _all_contexts(lang: Lang) -> tuple[np.ndarray, ...]:
    """Every (left, unit, right, state), boundaries and unseen units included."""
    U = len(lang.units)
    ctx = [(l, u, r, s) for u in range(U) for s in range(lang.unit_num_states[u])
           for l in range(BOUNDARY, U) for r in range(BOUNDARY, U)]
    return tuple(np.array(c) for c in zip(*ctx))


def test_stats_are_the_frames_sums(data) -> None:  # noqa: ANN001
    lang, corpus, stats = data
    assert stats.count.sum() == sum(c.size for c, _ in corpus)
    allx = np.concatenate([f for _, f in corpus]).astype(np.float64)
    np.testing.assert_allclose(stats.sum.sum(0), allx.sum(0), rtol=1e-9)
    np.testing.assert_allclose(stats.sumsq.sum(0), (allx**2).sum(0), rtol=1e-9)
    # One context by hand: unit a, state 1, followed by e, preceded by anything.
    a, e = lang.unit_id("a"), lang.unit_id("e")
    from asrkd.align.contexts import frame_contexts

    want = np.zeros(D)
    for classes, f in corpus:
        left, unit, right, state = frame_contexts(classes, lang)
        want += f[(unit == a) & (state == 1) & (right == e)].sum(0)
    sel = (stats.unit == a) & (stats.state == 1) & (stats.right == e)
    np.testing.assert_allclose(stats.sum[sel].sum(0), want, rtol=1e-6)
    assert len({tuple(c) for c in stats.contexts}) == stats.contexts.shape[0]  # each context once


def test_data_driven_questions_find_the_similar_units(data) -> None:  # noqa: ANN001
    lang, _, stats = data
    sets = cluster_units(stats, lang, 0.01 * stats.global_var())
    assert frozenset({lang.unit_id("e"), lang.unit_id("f")}) in sets
    assert lang.unit_id("z") not in set().union(*sets)  # never seen: in no data-driven set


def test_gain_threshold_splits_exactly_the_planted_contexts(data) -> None:  # noqa: ANN001
    lang, _, stats = data
    cfg = TreeConfig(num_leaves=1000, min_gain=100.0, min_count=20, extra_questions=False)
    tree, report = build_tree(stats, lang, cfg)
    assert report.stop.startswith("best gain")
    left, unit, right, state = _all_contexts(lang)
    pdf = tree.pdfs(left, unit, right, state)
    assert pdf.min() >= 0 and pdf.max() < tree.num_pdfs
    shift_ctx = np.isin(right, [lang.unit_id(u) for u in PLANTED_RIGHT])
    planted = {(lang.unit_id(u), s) for u, s in PLANTED}
    for u in range(len(lang.units)):
        for s in range(lang.unit_num_states[u]):
            sel = (unit == u) & (state == s)
            if (u, s) in planted:  # two pdfs: right context in the class or not; left ignored
                a, b = np.unique(pdf[sel & shift_ctx]), np.unique(pdf[sel & ~shift_ctx])
                assert a.size == 1 and b.size == 1 and a[0] != b[0], lang.class_name(lang.unit_offset[u] + s)
            else:
                assert np.unique(pdf[sel]).size == 1, lang.class_name(lang.unit_offset[u] + s)
    assert tree.num_pdfs == lang.num_classes + len(PLANTED)


@pytest.mark.parametrize("n,factor,scope", [(40, 1.0, "root"), (60, 1.5, "root"), (20, 1.0, "all")])
def test_num_leaves_gives_that_many_pdfs(data, n: int, factor: float, scope: str) -> None:  # noqa: ANN001
    lang, _, stats = data
    cfg = TreeConfig(num_leaves=n, min_gain=0.0, min_count=5, split_factor=factor, merge_scope=scope)
    tree, report = build_tree(stats, lang, cfg)
    assert tree.num_pdfs == n
    pdf = tree.pdfs(*_all_contexts(lang))
    assert set(np.unique(pdf)) == set(range(n))
    if factor > 1:
        assert report.split_leaves == int(np.ceil(n * factor)) and report.loglik_final <= report.loglik_split


def test_unseen_contexts_map_to_a_leaf(data) -> None:  # noqa: ANN001
    lang, _, stats = data
    tree, _ = build_tree(stats, lang, TreeConfig(num_leaves=1000, min_gain=100.0, min_count=20))
    a, e, z = lang.unit_id("a"), lang.unit_id("e"), lang.unit_id("z")
    seen = {tuple(c) for c in stats.contexts.tolist()}
    # Never seen: a unit's first state at the utterance start, z anywhere, z as a context.
    for ctx in [(BOUNDARY, a, e, 0), (z, a, z, 1), (BOUNDARY, z, BOUNDARY, 0), (a, z, e, 2)]:
        assert ctx not in seen
        p = tree.pdfs(*(np.array([v]) for v in ctx))
        assert 0 <= int(p[0]) < tree.num_pdfs
    # An unseen context of a planted state follows the answers: like any context outside {e, f}.
    np.testing.assert_array_equal(tree.pdfs(np.array([z]), np.array([a]), np.array([z]), np.array([1])),
                                  tree.pdfs(np.array([0]), np.array([a]), np.array([0]), np.array([1])))
    with pytest.raises(ValueError):
        tree.pdfs(np.array([0]), np.array([a]), np.array([0]), np.array([3]))


def test_loglik_never_decreases_with_a_split(data) -> None:  # noqa: ANN001
    lang, corpus, stats = data
    tree, report = build_tree(stats, lang, TreeConfig(num_leaves=150, min_gain=0.0, min_count=5))
    curve = np.array(report.curve)
    assert curve.size == report.split_leaves - report.roots + 1 and curve.size > 50
    assert (np.diff(curve) >= 0).all()
    assert report.loglik_split >= report.loglik_roots
    # The reported log-likelihood is the frames' under one Gaussian per pdf (the initial model).
    gmm = leaf_gmm(tree, stats, 0.01)
    from asrkd.align.contexts import frame_contexts

    total = 0.0
    for classes, f in corpus:
        pdf = tree.pdfs(*frame_contexts(classes, lang))
        ll = gmm.loglik(f, np.arange(tree.num_pdfs))
        total += float(ll[np.arange(pdf.size), pdf].astype(np.float64).sum())
    assert total == pytest.approx(report.loglik_final, rel=1e-4)
    # Splitting any set never lowers the floored-Gaussian log-likelihood.
    rng = np.random.default_rng(1)
    floor = 0.5 * stats.global_var()
    for _ in range(20):
        m = rng.random(stats.count.size) < 0.5
        parts = [gauss_loglik(stats.count[s].sum(), stats.sum[s].sum(0), stats.sumsq[s].sum(0), floor) for s in (m, ~m)]
        whole = gauss_loglik(stats.count.sum(), stats.sum.sum(0), stats.sumsq.sum(0), floor)
        assert sum(parts) >= whole - 1e-6 * abs(whole)


def test_save_load_round_trip_fingerprint_and_determinism(data, tmp_path: Path) -> None:  # noqa: ANN001
    lang, _, stats = data
    cfg = TreeConfig(num_leaves=50, min_gain=0.0, min_count=5)
    tree, _ = build_tree(stats, lang, cfg)
    again, _ = build_tree(stats, lang, cfg)
    assert again.fingerprint == tree.fingerprint  # deterministic
    d = tmp_path / "lang_tri"
    save_tree(tree, d)
    back = load_tree(d, lang)
    ctx = _all_contexts(lang)
    np.testing.assert_array_equal(back.pdfs(*ctx), tree.pdfs(*ctx))
    assert back.fingerprint == tree.fingerprint and back.num_pdfs == tree.num_pdfs
    assert len((d / "pdfs.txt").read_text().splitlines()) == tree.num_pdfs
    assert (d / "questions.txt").read_text().count("\n") == tree.questions.shape[0]
    fp = tied_fingerprint(lang, back)
    assert fp != lang.fingerprint and tied_fingerprint(lang, MonophoneTree(lang)) == lang.fingerprint
    other, _ = build_tree(stats, lang, dataclasses.replace(cfg, num_leaves=51))
    assert tied_fingerprint(lang, other) != fp
    meta = json.loads((d / "tree.json").read_text())
    meta["nodes"]["pdf"][meta["roots"][0]["node"]] = 0 if meta["nodes"]["pdf"][meta["roots"][0]["node"]] else 1
    (d / "tree.json").write_text(json.dumps(meta))
    with pytest.raises(AsrkdError):
        load_tree(d, lang)


def test_hand_written_questions_and_roots_file(data, tmp_path: Path) -> None:  # noqa: ANN001
    lang, _, stats = data
    lang_dir = Path(lang.directory)
    (lang_dir / "extra_questions.txt").write_text("e f\n<sil> <bnd>\n")
    # a: one shared root for its three states; b..h and z as before; silence split.
    (lang_dir / "roots.txt").write_text("shared split a\nnot-shared split <sil>\n")
    try:
        cfg = TreeConfig(num_leaves=1000, min_gain=100.0, min_count=20, data_questions=False)
        tree, report = build_tree(stats, lang, cfg)
    finally:
        (lang_dir / "extra_questions.txt").unlink()
        (lang_dir / "roots.txt").unlink()
    a = lang.unit_id("a")
    assert report.roots == 1 + 3 * (len(lang.units) - 1)
    pdf = tree.pdfs(*_all_contexts(lang))
    left, unit, right, state = _all_contexts(lang)
    # The shared root split on the state (three states differ) and on the planted right context.
    assert np.unique(pdf[unit == a]).size == 6
