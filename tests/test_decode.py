"""Decoder: known best paths, brute force on tiny cases, pruning, word lists, greedy, Lang glue."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from asrkd.decode.decoder import (
    DecodeConfig, Decoder, greedy_units, scaled_loglik, search, uniform_lm,
)
from asrkd.decode.graph import UnitHmms, unit_loop_graph, word_list_graph
from asrkd.decode.priors import log_priors, unseen_units
from asrkd.decode.sweep import pick_plateau_centre, sweep
from asrkd.decode.synthetic import peaky_log_posteriors, state_path
from asrkd.errors import AsrkdError
from asrkd.lang.unit_lm import estimate_kn

BIG = dict(beam=1e6, max_active=1_000_000)


def _onehot_loglik(path: np.ndarray, num_classes: int, hit: float = 0.0, miss: float = -10.0) -> np.ndarray:
    ll = np.full((len(path), num_classes), miss, dtype=np.float32)
    ll[np.arange(len(path)), path] = hit
    return ll


def test_recovers_known_path_and_segments() -> None:
    U = 6  # unit 0 is silence
    hmms = UnitHmms.uniform(U, 3)
    graph = unit_loop_graph(U, silence_unit=0)
    units = [3, 1, 1, 5, 2]  # a repeated unit must stay two units
    durations = [2, 1, 3, 1, 1, 2, 4, 2, 1, 1, 1, 1, 2, 2, 2]
    path = np.repeat(np.array([hmms.cls[u, s] for u in units for s in range(3)]), durations)
    res = search(_onehot_loglik(path, U * 3), hmms, graph, uniform_lm(U), lm_weight=0.0,
                 insertion_penalty=0.0, silence_logp=-0.7, beam=15.0, max_active=100)
    assert [int(graph.node_unit[n]) for n in res.nodes] == units
    bounds = np.cumsum([0] + [sum(durations[3 * i:3 * i + 3]) for i in range(len(units))])
    assert res.starts == bounds[:-1].tolist() and res.ends == bounds[1:].tolist()
    assert res.reached_final


def _chain_best(loglik: np.ndarray, states: list[tuple[int, float, float]]) -> float:
    """Best score of exactly T frames through a left-to-right chain (cls, self_lp, fwd_lp),
    starting in the first state and leaving from the last (its fwd_lp included)."""
    T, n = loglik.shape[0], len(states)
    score = np.full(n, -np.inf)
    score[0] = loglik[0, states[0][0]]
    for t in range(1, T):
        new = np.full(n, -np.inf)
        for j, (c, _, _) in enumerate(states):
            best = score[j] + states[j][1]
            if j > 0:
                best = max(best, score[j - 1] + states[j - 1][2])
            new[j] = best + loglik[t, c]
        score = new
    return score[-1] + states[-1][2]


def _brute_force(loglik, hmms, sil, lm, lm_weight, pen, sil_logp) -> tuple[float, list[int]]:  # noqa: ANN001
    """Max over every unit sequence (silence never twice in a row) of alignment + LM + penalties."""
    T = loglik.shape[0]
    best, best_seq = -np.inf, []
    U = hmms.num_units
    for length in range(1, T + 1):
        for seq in itertools.product(range(U), repeat=length):
            if any(a == b == sil for a, b in zip(seq, seq[1:])):
                continue
            if sum(int(hmms.num_states[u]) for u in seq) > T:
                continue
            states = [(int(hmms.cls[u, s]), float(hmms.self_lp[u, s]), float(hmms.fwd_lp[u, s]))
                      for u in seq for s in range(int(hmms.num_states[u]))]
            ac = _chain_best(loglik, states)
            words = [u for u in seq if u != sil]
            total = ac + lm_weight * lm.sentence_logprob(words) - pen * len(words)
            total += sil_logp * sum(u == sil for u in seq)
            if total > best:
                best, best_seq = total, list(seq)
    return best, best_seq


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_on_tiny_cases(seed: int) -> None:
    rng = np.random.default_rng(seed)
    U = 3  # 0 = silence (1 state), units 1 and 2 (1 and 2 states)
    nst = np.array([1, 1, 2])
    cls = np.array([[0, 0], [1, 0], [2, 3]])
    hmms = UnitHmms(nst, cls, np.log(rng.uniform(0.2, 0.8, (U, 2))), np.log(rng.uniform(0.2, 0.8, (U, 2))))
    lm = estimate_kn([[1, 2, 2], [2, 1], [1, 1, 2]], U, 3)
    loglik = rng.normal(0, 2.0, size=(6, 4)).astype(np.float32)
    graph = unit_loop_graph(U, silence_unit=0)
    kw = dict(lm_weight=0.8, insertion_penalty=0.3, silence_logp=-0.5)
    res = search(loglik, hmms, graph, lm, **kw, **BIG)
    expected, seq = _brute_force(loglik, hmms, 0, lm, 0.8, 0.3, -0.5)
    assert res.score == pytest.approx(expected, abs=1e-4)
    assert [int(graph.node_unit[n]) for n in res.nodes] == seq
    # A narrow beam can only do worse, never better, than the exact search.
    narrow = search(loglik, hmms, graph, lm, **kw, beam=1.0, max_active=2)
    assert narrow.score <= expected + 1e-4


def test_min_state_frames_rejects_a_burst_too_short_for_a_word() -> None:
    """A 4-frame burst that fits a 2-state word is decoded as that word with the alignment
    topology, and as silence once every state must last 3 frames (a word >= 6 frames)."""
    U = 2  # unit 0: silence (1 state), unit 1: a 2-state word
    base = UnitHmms(np.array([1, 2]), np.array([[0, 0], [1, 2]]), np.log(np.full((2, 2), 0.5)),
                    np.log(np.full((2, 2), 0.5)))
    slow = base.with_min_duration(3)
    assert slow.num_states.tolist() == [3, 6] and slow.cls[1].tolist() == [1, 1, 1, 2, 2, 2]
    assert np.isneginf(slow.self_lp[1, [0, 1, 3, 4]]).all() and (slow.fwd_lp[1, [0, 1, 3, 4]] == 0).all()
    assert base.with_min_duration(1) is base
    with pytest.raises(AsrkdError, match="min_state_frames"):
        base.with_min_duration(0)
    path = np.array([0] * 8 + [1, 1, 2, 2] + [0] * 8)
    # silence is only mildly worse than the word on the burst (-2 a frame), the word far worse
    # than silence outside it (-10): the topology's minimum duration decides
    ll = _onehot_loglik(path, 3)
    ll[8:12, 0] = -2.0
    graph = unit_loop_graph(U, silence_unit=0)
    kw = dict(lm_weight=0.0, insertion_penalty=0.0, silence_logp=0.0, **BIG)
    fast_units = [int(graph.node_unit[n]) for n in search(ll, base, graph, uniform_lm(U), **kw).nodes]
    slow_res = search(ll, slow, graph, uniform_lm(U), **kw)
    assert fast_units == [0, 1, 0]
    assert [int(graph.node_unit[n]) for n in slow_res.nodes] == [0]
    # and the word still comes out when the evidence lasts long enough
    long_path = np.array([0] * 8 + [1] * 3 + [2] * 3 + [0] * 8)
    long_ll = _onehot_loglik(long_path, 3)
    long_ll[8:14, 0] = -2.0
    long_res = search(long_ll, slow, graph, uniform_lm(U), **kw)
    assert [int(graph.node_unit[n]) for n in long_res.nodes] == [0, 1, 0]


def test_lm_and_insertion_penalty_change_the_answer() -> None:
    U = 3
    hmms = UnitHmms.uniform(U, 1)
    graph = unit_loop_graph(U)
    # Frames ambiguous between "1 2" and "1 1": the LM decides.
    ll = np.log(np.array([[0.01, 0.9, 0.09], [0.01, 0.5, 0.49]], dtype=np.float32))
    lm = estimate_kn([[1, 2]] * 10, U, 2)
    kw = dict(insertion_penalty=0.0, silence_logp=0.0, **BIG)
    no_lm = search(ll, hmms, graph, lm, lm_weight=0.0, **kw)
    with_lm = search(ll, hmms, graph, lm, lm_weight=1.0, **kw)
    assert [int(graph.node_unit[n]) for n in no_lm.nodes] in ([1], [1, 1])  # acoustics alone
    assert [int(graph.node_unit[n]) for n in with_lm.nodes] == [1, 2]
    # A large insertion penalty merges the two frames into one unit.
    merged = search(ll, hmms, graph, lm, lm_weight=0.0, insertion_penalty=50.0, silence_logp=0.0, **BIG)
    assert len(merged.nodes) == 1


def test_word_list_graph_only_outputs_listed_words() -> None:
    U = 5
    hmms = UnitHmms.uniform(U, 2)
    words = {"AB": [1, 2], "AC": [1, 3], "D": [4]}
    graph = word_list_graph(words, silence_unit=0)
    # Acoustics say "1 2 3": not a word sequence; the best listed one is "AB" + something.
    path = np.repeat(np.array([hmms.cls[u, s] for u in [1, 2, 3] for s in range(2)]), 3)
    res = search(_onehot_loglik(path, U * 2), hmms, graph, uniform_lm(U), lm_weight=0.0,
                 insertion_penalty=0.0, silence_logp=-1.0, **BIG)
    seq = [int(graph.node_unit[n]) for n in res.nodes if not graph.is_sil[n]]
    segs, i = [], 0
    while i < len(seq):  # split into listed words
        for w, us in words.items():
            if seq[i:i + len(us)] == us:
                segs.append(w)
                i += len(us)
                break
        else:
            raise AssertionError(f"{seq} is not a sequence of listed words")
    assert segs[0] == "AB" and res.reached_final


def test_greedy_units_collapses_states_not_repeats() -> None:
    class_unit = np.array([0, 1, 1, 2, 2])
    class_state = np.array([0, 0, 1, 0, 1])
    frames = [0, 1, 1, 2, 1, 2, 2, 0, 0, 3, 4, 0]  # unit 1 twice (state goes back), then unit 2
    lp = _onehot_loglik(np.array(frames), 5)
    assert greedy_units(lp, class_unit, class_state, 0) == [-1, 1, 1, -1, 2, -1]


def test_priors_and_scaled_loglik() -> None:
    lp = log_priors(np.array([0, 10, 30]))
    assert np.exp(lp).sum() == pytest.approx(1.0, rel=1e-6)
    assert lp[0] > -np.inf and lp[0] < lp[1] < lp[2]
    post = np.log(np.full((2, 3), 1 / 3, dtype=np.float32))
    ll = scaled_loglik(post, lp, acoustic_scale=0.5, prior_scale=1.0)
    assert ll == pytest.approx(0.5 * (post - lp[None, :]))


def _grapheme_lang(tmp_path, texts):  # noqa: ANN001, ANN202
    from asrkd.lang.inventory import LangConfig, make_lang

    return make_lang(texts, tmp_path / "lang", LangConfig(unit_type="grapheme", states_per_unit=2, sil_states=2))


def test_decoder_end_to_end_on_a_lang(tmp_path) -> None:  # noqa: ANN001
    texts = ["YES NO YES", "NO NO YES", "YES YES NO", "NO YES"]
    lang = _grapheme_lang(tmp_path, texts)
    lm = estimate_kn([[u for w in lang.transcript_units(t) for u in w] for t in texts], len(lang.units), 3)
    rng = np.random.default_rng(0)
    word_list = sorted({w for t in texts for w in t.split()})
    for graph_kind in ["unit_loop", "word_list"]:
        dec = Decoder(lang, DecodeConfig(graph=graph_kind), lm=lm, word_list=word_list)
        for ref in ["NO YES NO", "YES"]:
            # Silence between words so a grapheme loop can find the word boundaries.
            units = []
            for w in lang.transcript_units(ref):
                units += w + [0]
            path = state_path(units[:-1], dec.hmms, rng, mean_frames=4, silence_unit=0, silence_frames=10)
            post = peaky_log_posteriors(path, lang.num_classes, rng, confusion=0.05)
            hyp = dec.decode(post)
            assert hyp.text == ref, graph_kind
            assert hyp.result is not None and hyp.result.reached_final
            assert dec.greedy(post).words  # greedy runs and finds something


def test_sweep_returns_best_grid_point(tmp_path) -> None:  # noqa: ANN001
    texts = ["AB BA", "AB AB", "BA"]
    lang = _grapheme_lang(tmp_path, texts)
    lm = estimate_kn([[u for w in lang.transcript_units(t) for u in w] for t in texts], len(lang.units), 2)
    dec = Decoder(lang, DecodeConfig(graph="unit_loop"), lm=lm)
    rng = np.random.default_rng(1)
    logliks, refs = {}, {}
    for i, t in enumerate(texts):
        units = []
        for w in lang.transcript_units(t):
            units += w + [0]
        path = state_path(units[:-1], dec.hmms, rng, silence_unit=0, silence_frames=6)
        logliks[f"u{i}"] = dec.loglik(peaky_log_posteriors(path, lang.num_classes, rng))
        refs[f"u{i}"] = t
    out = sweep(dec, logliks, refs, [0.5, 1.0], [0.0, 1.0])
    assert len(out.table) == 4
    assert out.wer == min(row["wer"] for row in out.table)
    assert set(out.hyps) == set(refs)


def test_pick_plateau_centre() -> None:
    # A unique minimum wins wherever it is.
    assert pick_plateau_centre([3, 2, 0, 4], 2) == 2
    # Ties: the tied point nearest the centroid of the tied points, not the first in grid order.
    grid = [3, 1, 1, 1,
            2, 1, 1, 1,
            5, 1, 1, 1]
    assert pick_plateau_centre(grid, 4) == 6  # row 1, column 2
    # An L-shaped plateau: the centroid (1/3, 1/3) is nearest to (0, 0).
    assert pick_plateau_centre([0, 0, 0, 9], 2) == 0
    # Equally near points: the first in grid order.
    assert pick_plateau_centre([1, 1, 1, 1], 2) == 0
    with pytest.raises(Exception):
        pick_plateau_centre([1, 2, 3], 2)


def test_unseen_units_are_left_out(tmp_path) -> None:  # noqa: ANN001
    """A unit none of whose frames occur in the training labels has a floored prior; dividing
    by it boosts the unit so much that it is decoded from near-zero posteriors, unless the
    decoder leaves it out (as make_decoder does with unseen_units)."""
    lang = _grapheme_lang(tmp_path, ["YES NO"])
    hmms = Decoder(lang, DecodeConfig(graph="unit_loop")).hmms
    rng = np.random.default_rng(3)
    units = [u for w in lang.transcript_units("YES") for u in w]
    path = state_path(units, hmms, rng, mean_frames=5, silence_unit=0, silence_frames=8)
    counts = np.bincount(path, minlength=lang.num_classes) * 10_000  # training saw "YES" only
    unseen = unseen_units(lang, counts)
    assert sorted(lang.units[u] for u in unseen) == ["N", "O"]
    post = np.full((len(path), lang.num_classes), 1e-3, dtype=np.float32)
    post[np.arange(len(path)), path] = 1.0
    log_post = np.log(post / post.sum(1, keepdims=True))
    cfg = DecodeConfig(graph="unit_loop", acoustic_scale=1.0)
    prior = log_priors(counts)
    boosted = Decoder(lang, cfg, log_prior=prior).decode(log_post)
    assert set(boosted.units) & set(unseen)  # the failure mode this guards against
    hyp = Decoder(lang, cfg, log_prior=prior, excluded_units=unseen).decode(log_post)
    assert hyp.text == "YES" and not set(hyp.units) & set(unseen)
    # Word lists drop the words spelled with an unseen unit.
    wl = Decoder(lang, DecodeConfig(graph="word_list"), log_prior=prior, word_list=["YES", "NO"],
                 excluded_units=unseen)
    assert wl.graph.words == ["YES"]


def test_auto_graph_spells_words_from_a_word_list(tmp_path) -> None:  # noqa: ANN001
    """Letters in a free loop find word boundaries only at silences; "auto" gives grapheme
    units the word list, so "YES NO" without a pause still comes out as two words."""
    texts = ["YES NO", "NO YES"]
    lang = _grapheme_lang(tmp_path, texts)
    rng = np.random.default_rng(4)
    dec = Decoder(lang, DecodeConfig(), word_list=["YES", "NO"])
    assert dec.kind == "word_list"
    units = [u for w in lang.transcript_units("YES NO") for u in w]  # no silence between words
    path = state_path(units, dec.hmms, rng, mean_frames=4, silence_unit=0, silence_frames=8)
    post = peaky_log_posteriors(path, lang.num_classes, rng, confusion=0.0)
    assert dec.decode(post).text == "YES NO"
    assert Decoder(lang, DecodeConfig(graph="unit_loop")).decode(post).text == "YESNO"


def test_empty_and_tiny_inputs() -> None:
    U = 3
    hmms = UnitHmms.uniform(U, 3)
    graph = unit_loop_graph(U, silence_unit=0)
    empty = search(np.zeros((0, 9), np.float32), hmms, graph, uniform_lm(U), lm_weight=1.0,
                   insertion_penalty=0.0, silence_logp=0.0, beam=10.0, max_active=10)
    assert empty.nodes == []
    # Two frames cannot pass a 3-state unit: the best partial path is returned, flagged.
    short = search(np.zeros((2, 9), np.float32), hmms, graph, uniform_lm(U), lm_weight=1.0,
                   insertion_penalty=0.0, silence_logp=0.0, beam=10.0, max_active=10)
    assert not short.reached_final and len(short.nodes) == 1


def test_evaluate_wer_writes_scoring_with_dev_sweep(tmp_path) -> None:  # noqa: ANN001
    """The evaluate plumbing: posteriors stored as the set's "features" (posterior_fn = exp),
    labels for the priors, a dev sweep, and the scoring files."""
    import json

    from asrkd.data.datadir import write_table
    from asrkd.decode.wer import evaluate_wer, make_decoder
    from asrkd.framestore import write_store

    train_texts = {"s-1": "YES NO YES", "s-2": "NO NO YES", "s-3": "YES YES NO"}
    lang = _grapheme_lang(tmp_path, list(train_texts.values()))
    train = tmp_path / "train"
    write_table(train / "text", train_texts)
    rng = np.random.default_rng(2)
    hmms = make_decoder(tmp_path / "lang", train, None, DecodeConfig()).hmms
    for name, texts in [("dev", {"d-1": "NO YES", "d-2": "YES"}), ("test", {"t-1": "YES NO NO", "t-2": "NO"})]:
        d = tmp_path / name
        write_table(d / "text", texts)
        items = []
        for u, t in texts.items():
            units = []
            for w in lang.transcript_units(t):
                units += w + [0]
            path = state_path(units[:-1], hmms, rng, mean_frames=4, silence_unit=0, silence_frames=10)
            items.append((u, np.exp(peaky_log_posteriors(path, lang.num_classes, rng, confusion=0.05))))
        write_store(d / "feats", items, "float32", (lang.num_classes,))
    labels = [(f"s-{i}", rng.integers(0, lang.num_classes, size=50).astype(np.int32)) for i in range(3)]
    write_store(train / "labels", labels, "int32", (), attrs={"num_classes": lang.num_classes})
    decoder = make_decoder(tmp_path / "lang", train, train / "labels", DecodeConfig(
        sweep_lm_weights=[0.5, 1.0], sweep_insertion_penalties=[0.0]))
    out = tmp_path / "eval"
    result = evaluate_wer(lambda f: f, tmp_path / "test", out, decoder, dev_dir=tmp_path / "dev")
    assert result["wer"]["rate"] == 0.0 and result["decode_rtf"] > 0
    summary = json.loads((out / "wer.json").read_text())
    assert summary["wer"]["ref"] == 4 and summary["lm_weight"] in (0.5, 1.0)
    assert len(json.loads((out / "sweep.json").read_text())["table"]) == 2
    assert (out / "hyp").read_text() == "t-1 YES NO NO\nt-2 NO\n"
    assert (out / "greedy" / "wer.json").is_file() and (out / "decode_config.yaml").is_file()
    # The step (asrkd evaluate --lang ...): .wer.done last; a complete step decodes nothing.
    from asrkd.decode.wer import WerSetup, write_wer

    setup = WerSetup(lang=tmp_path / "lang", train_data=train, prior_labels=train / "labels", dev=tmp_path / "dev",
                     decode=DecodeConfig(sweep_lm_weights=[0.5, 1.0], sweep_insertion_penalties=[0.0]))
    assert write_wer(lambda f: f, tmp_path / "test", tmp_path / "step", setup)["wer"]["rate"] == 0.0
    assert (tmp_path / "step" / ".wer.done").is_file()

    def never(f: np.ndarray) -> np.ndarray:
        raise AssertionError("a complete WER step computes no posteriors")

    assert write_wer(never, tmp_path / "test", tmp_path / "step", setup) is None
    assert write_wer(lambda f: f, tmp_path / "test", tmp_path / "step", setup, force=True) is not None
