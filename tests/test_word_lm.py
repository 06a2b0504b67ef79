"""Word n-gram LM (asrkd.lm): ARPA reading and writing, modified Kneser-Ney, pruning, perplexity
and OOV rate, the train-lm step."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from asrkd.errors import AsrkdError
from asrkd.lm import BOS, EOS, UNK, BackoffLM, load_arpa, write_arpa
from asrkd.lm.counts import count_ngrams, encode
from asrkd.lm.evaluate import score_text
from asrkd.lm.kneser_ney import adjusted_counts, estimate_kneser_ney, modified_kn_discounts, word_loop
from asrkd.lm.prune import prune
from asrkd.lm.train import LMConfig, LMInputs, build_vocab, train_lm

# ---- fixtures -------------------------------------------------------------------------------
HAND_ARPA = """This header text is ignored by readers.

\\data\\
ngram 1=6
ngram 2=5
ngram 3=2

\\1-grams:
-1.0\t</s>
-99\t<s>\t-0.30
-0.7\tA\t-0.2
-0.9 B -0.1
-1.2\tC
-2.0\t<unk>

\\2-grams:
-0.3\t<s> A\t-0.05
-0.4\tA B\t-0.15
-0.6\tB C
-0.5\tB </s>
-0.25\tA A

\\3-grams:
-0.1\t<s> A B
-0.2\tA B C

\\end\\
"""


def _sentences(seed: int, n: int, vocab: int = 40) -> list[list[str]]:
    """Zipf-distributed words with some structure (w_i is often followed by w_{i+1})."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = [min(int(rng.zipf(1.6)), vocab) - 1]
        for _ in range(int(rng.integers(0, 12))):
            s.append((s[-1] + 1) % vocab if rng.random() < 0.5 else min(int(rng.zipf(1.6)), vocab) - 1)
        out.append([f"W{u}" for u in s])
    return out


def _train(sents: list[list[str]], order: int) -> tuple[BackoffLM, list]:
    vocab = build_vocab(sents, [], 0)
    index = {w: i for i, w in enumerate(vocab)}
    tables = count_ngrams(encode(sents, index, index[BOS], index[EOS], index[UNK]), len(vocab), order)
    lm, _ = estimate_kneser_ney(tables, vocab)
    return lm, tables


def _distribution_sum(lm: BackoffLM, history: list[str]) -> float:
    outcomes = np.array([i for i in range(lm.vocab_size) if i != lm.bos])
    ctx = np.tile(lm.word_ids(history).reshape(1, -1), (len(outcomes), 1))
    return float(np.sum(10.0 ** lm.logprob_ids(outcomes, ctx)))


def _write_data_dir(d: Path, text: dict[str, str]) -> Path:
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{k} {v}\n" for k, v in sorted(text.items())))
    (d / "utt2spk").write_text("".join(f"{k} S\n" for k in sorted(text)))
    return d


# ---- ARPA reading -----------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_hand_written_arpa_gives_the_listed_and_backed_off_probabilities(tmp_path: Path, gz: bool) -> None:
    path = tmp_path / ("lm.arpa.gz" if gz else "lm.arpa")
    path.write_bytes(gzip.compress(HAND_ARPA.encode()) if gz else HAND_ARPA.encode())
    lm = load_arpa(path)
    assert lm.order == 3 and lm.num_ngrams() == [6, 5, 2]
    lp = lm.logprob
    # Listed n-grams of each order.
    assert lp("B", ["<s>", "A"]) == pytest.approx(-0.1)
    assert lp("C", ["A", "B"]) == pytest.approx(-0.2)
    assert lp("A", ["<s>"]) == pytest.approx(-0.3)
    assert lp("C") == pytest.approx(-1.2)
    # Backed off: p(C | <s> A) = bow(<s> A) * p(C | A) = bow(<s> A) * bow(A) * p(C).
    assert lp("C", ["<s>", "A"]) == pytest.approx(-0.05 + -0.2 + -1.2)
    # History "B B" is not listed (bow 1), "B" has bow -0.1; bigram "B C" listed.
    assert lp("C", ["B", "B"]) == pytest.approx(-0.6)
    assert lp("A", ["B", "B"]) == pytest.approx(-0.1 + -0.7)
    # A missing backoff weight is 0: C has none, so p(A | C) = p(A).
    assert lp("A", ["C"]) == pytest.approx(-0.7)
    assert lp("A", ["A", "C"]) == pytest.approx(-0.7)
    # "A A" is listed with no backoff: p(B | A A) = bow(A A) * p(B | A) = p(A B).
    assert lp("B", ["A", "A"]) == pytest.approx(-0.4)
    # A word outside the vocabulary is <unk>; <s> is never predicted (-99).
    assert lp("ZEBRA", ["A"]) == pytest.approx(-0.2 + -2.0)
    assert lp("</s>", ["A", "B"]) == pytest.approx(-0.15 + -0.5)
    assert lp("<s>") == -99


def test_arpa_reader_keeps_n_grams_whose_prefix_is_not_listed(tmp_path: Path) -> None:
    text = HAND_ARPA.replace("ngram 3=2", "ngram 3=3").replace(
        "-0.2\tA B C\n", "-0.2\tA B C\n-0.35\tC C A\n")
    (tmp_path / "lm.arpa").write_text(text)
    lm = load_arpa(tmp_path / "lm.arpa")
    assert lm.num_ngrams() == [6, 5, 3]  # "C C" is a context only, no n-gram
    assert lm.logprob("A", ["C", "C"]) == pytest.approx(-0.35)
    assert lm.logprob("B", ["C", "C"]) == pytest.approx(-0.9)  # bow(C C) = bow(C) = 1


@pytest.mark.parametrize("broken, message", [
    ("\\1-grams:\n-1 a\n\\end\\\n", "data"),
    (HAND_ARPA.replace("-0.6\tB C\n", "-0.6\tB Q\n"), "not among the 1-grams"),
    (HAND_ARPA.replace("\\end\\\n", ""), "truncated"),
    (HAND_ARPA.replace("-0.6\tB C\n", "-0.6\tB C D E\n"), "fields"),
])
def test_arpa_reader_refuses_broken_files(tmp_path: Path, broken: str, message: str) -> None:
    (tmp_path / "lm.arpa").write_text(broken)
    with pytest.raises(AsrkdError, match=message):
        load_arpa(tmp_path / "lm.arpa")


# ---- modified Kneser-Ney ----------------------------------------------------------------------
def _reference_kn(sents: list[list[str]], vocab: list[str], order: int):
    """A direct transcription of interpolated modified Kneser-Ney with dicts (Chen & Goodman)."""
    raw: list[Counter] = [Counter() for _ in range(order + 1)]
    for s in sents:
        p = [BOS, *s, EOS]
        for i in range(1, len(p)):
            for k in range(1, order + 1):
                if i - k + 1 >= 0:
                    raw[k][tuple(p[i - k + 1:i + 1])] += 1
    left: list[Counter] = [Counter() for _ in range(order + 1)]
    for k in range(2, order + 1):
        for g in raw[k]:
            left[k - 1][g[1:]] += 1
    a = [{}] + [{g: (c if k == order or g[0] == BOS else left[k][g]) for g, c in raw[k].items()}
                for k in range(1, order + 1)]
    a[1].pop((BOS,), None)
    disc = [None]
    for k in range(1, order + 1):
        n = [sum(1 for c in a[k].values() if c == i) for i in (1, 2, 3, 4)]
        assert min(n) > 0, "test data too small for the estimate"
        y = n[0] / (n[0] + 2 * n[1])
        disc.append((1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]))
    ctx_tot, ctx_d = defaultdict(float), defaultdict(float)
    for k in range(1, order + 1):
        for g, c in a[k].items():
            d = disc[k][min(c, 3) - 1]
            ctx_tot[g[:-1]] += c
            ctx_d[g[:-1]] += d
    outcomes = len(vocab) - 1

    def prob(h: tuple, w: str) -> float:
        if h and h not in ctx_tot:
            return prob(h[1:], w)
        k = len(h) + 1
        c = a[k].get(h + (w,), 0)
        d = disc[k][min(c, 3) - 1] if c else 0.0
        lower = prob(h[1:], w) if h else 1.0 / outcomes
        return (c - d) / ctx_tot[h] + ctx_d[h] / ctx_tot[h] * lower

    return prob


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_matches_a_direct_transcription_of_the_formulas(order: int) -> None:
    sents = _sentences(0, 1500, vocab=300)
    lm, _ = _train(sents, order)
    ref = _reference_kn(sents, lm.vocab, order)
    rng = np.random.default_rng(1)
    words = [w for w in lm.vocab if w != BOS]
    histories = [[], [BOS], ["W0"], [BOS, "W1"], ["W1", "W2"], ["W3", "W1", "W2"], ["W39", "W0"],
                 [UNK, "W1"]] + [list(rng.choice(words, size=order - 1)) for _ in range(10)]
    for h in histories:
        h = h[-(order - 1):] if order > 1 else []
        for w in words:
            expected = math.log10(ref(tuple(h), w))
            assert lm.logprob(w, h) == pytest.approx(expected, abs=1e-9), (h, w)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_distributions_sum_to_one_for_seen_and_unseen_histories(order: int) -> None:
    sents = _sentences(2, 300)
    lm, _ = _train(sents, order)
    rng = np.random.default_rng(3)
    words = [w for w in lm.vocab if w not in (BOS,)]
    seen = [s[:order - 1] for s in sents[:15] if len(s) >= order - 1]
    unseen = [list(rng.choice(words, size=order - 1)) for _ in range(15)]  # mostly never seen
    for h in [[], [BOS], *seen, *unseen, [BOS, "NEVER"]]:
        assert _distribution_sum(lm, h) == pytest.approx(1.0, abs=1e-9), h


def test_discounts_follow_chen_and_goodman_and_fall_back_on_too_little_data() -> None:
    a = np.array([1] * 100 + [2] * 40 + [3] * 20 + [4] * 10 + [9] * 5, dtype=float)
    d = modified_kn_discounts(a)
    y = 100 / (100 + 80)
    assert d.d == pytest.approx((1 - 2 * y * 40 / 100, 2 - 3 * y * 20 / 40, 3 - 4 * y * 10 / 20))
    assert not d.fallback and d.counts_of_counts == (100, 40, 20, 10)
    assert modified_kn_discounts(np.array([1.0, 1.0, 2.0])).fallback  # no count of 3 or 4


def test_adjusted_counts_are_continuation_counts_below_the_top_order() -> None:
    sents = [["A", "B"], ["C", "B"], ["A", "B"]]
    vocab = build_vocab(sents, [], 0)
    index = {w: i for i, w in enumerate(vocab)}
    tables = count_ngrams(encode(sents, index, index[BOS], index[EOS], index[UNK]), len(vocab), 2)
    a = adjusted_counts(tables, index[BOS])
    assert a[0][index["B"]] == 2  # B follows A and C
    assert a[0][index["A"]] == 1 and a[0][index[BOS]] == 0
    assert tables[0].count[index["B"]] == 3
    bigram = {tuple(vocab[i] for i in (int(p), int(w))): c
              for p, w, c in zip(tables[1].prefix, tables[1].word, a[1])}
    assert bigram[(BOS, "A")] == 2 and bigram[("A", "B")] == 2  # top order: raw counts


# ---- ARPA round trip ----------------------------------------------------------------------------
@pytest.mark.parametrize("order", [2, 3, 4])
def test_reading_the_written_arpa_gives_back_the_model(tmp_path: Path, order: int) -> None:
    sents = _sentences(4, 300)
    lm, _ = _train(sents, order)
    write_arpa(lm, tmp_path / "lm.arpa")
    back = load_arpa(tmp_path / "lm.arpa")
    assert back.vocab == lm.vocab and back.num_ngrams() == lm.num_ngrams()
    rng = np.random.default_rng(5)
    n = 3000
    words = rng.integers(0, lm.vocab_size, size=n)
    words[words == lm.bos] = lm.eos
    ctx = rng.integers(0, lm.vocab_size, size=(n, order - 1))
    real = _sentences(6, 40)  # and real histories, which hit the longer n-grams
    from asrkd.lm.evaluate import sentence_queries
    w2, c2, _ = sentence_queries(lm, real)
    words, ctx = np.concatenate([words, w2]), np.concatenate([ctx, c2])
    a, b = lm.logprob_ids(words, ctx), back.logprob_ids(words, ctx)
    assert np.max(np.abs(a - b)) < 1e-6
    assert score_text(back, real).ppl == pytest.approx(score_text(lm, real).ppl, rel=1e-6)


# ---- pruning ----------------------------------------------------------------------------------------
def _closed(lm: BackoffLM) -> bool:
    """Every listed n-gram's prefix and suffix are listed n-grams."""
    for k in range(2, lm.order + 1):
        ids = lm.ngram_ids(k)
        if np.any(lm.rows_of(ids[:, :-1]) < 0) or np.any(lm.rows_of(ids[:, 1:]) < 0):
            return False
    return True


def test_pruning_shrinks_the_model_and_raises_perplexity_only_a_little() -> None:
    train, held = _sentences(7, 3000, vocab=300), _sentences(8, 300, vocab=300)
    lm, tables = _train(train, 3)
    base = score_text(lm, held).ppl
    small, thr = prune(lm, threshold=1e-4)
    assert thr == 1e-4
    assert sum(small.num_ngrams()) < 0.7 * sum(lm.num_ngrams())
    assert small.num_ngrams()[0] == lm.num_ngrams()[0]  # unigrams stay
    assert base < score_text(small, held).ppl < 1.05 * base
    assert _closed(small)
    for h in [[], [BOS], ["W1"], ["W1", "W2"], ["W5", "W9"], [BOS, "W3"]]:
        assert _distribution_sum(small, h) == pytest.approx(1.0, abs=1e-9), h
    # The kept n-grams keep their probabilities.
    ids = small.ngram_ids(3)
    rows = lm.rows_of(ids)
    assert np.allclose(lm.logp[2][rows], small.logp[2])


def test_relative_entropy_of_a_removal_equals_the_brute_force_kl_divergence() -> None:
    """Stolcke's closed form against P(h) KL(p(.|h) || p'(.|h)) over the whole vocabulary, for
    single n-grams of orders 3 and 2 removed from the model."""
    from asrkd.lm.prune import Pruner

    lm, _ = _train(_sentences(13, 800, vocab=60), 3)
    pr = Pruner(lm)
    outcomes = np.array([i for i in range(lm.vocab_size) if i != lm.bos])
    rng = np.random.default_rng(14)
    for k in (3, 2):
        # For bigrams, every trigram goes first (each bigram is the prefix or suffix of one).
        keep_all = [np.full(len(w), j <= k, dtype=bool) for j, w in enumerate(lm.word, 1)]
        base = pr.apply(keep_all)
        rows = rng.choice(len(lm.word[k - 1]), size=8, replace=False)
        closed_form = pr._entropy_rise(k, rows, keep_all[k - 1])
        hist = lm.ngram_ids(k - 1)
        for row, d in zip(rows, closed_form):
            keep = [m.copy() for m in keep_all]
            keep[k - 1][row] = False
            small = pr.apply(keep)
            h = hist[lm.prefix[k - 1][row]]
            ctx = np.tile(h, (len(outcomes), 1))
            p, q = 10.0 ** base.logprob_ids(outcomes, ctx), 10.0 ** small.logprob_ids(outcomes, ctx)
            assert q.sum() == pytest.approx(1.0, abs=1e-9)
            brute = pr.hist[k - 2][lm.prefix[k - 1][row]] * np.sum(p * np.log(p / q))
            assert d == pytest.approx(brute, rel=1e-6, abs=1e-15)


def test_pruning_to_a_size_and_count_cutoffs() -> None:
    train = _sentences(9, 2000, vocab=200)
    lm, tables = _train(train, 3)
    target = sum(lm.num_ngrams()) // 2
    small, thr = prune(lm, max_ngrams=target)
    assert target * 0.95 <= sum(small.num_ngrams()) <= target
    assert thr > 0 and _closed(small)
    cut, _ = prune(lm, cutoffs=(1,), raw_counts=[t.count for t in tables])
    assert cut.num_ngrams()[1] < lm.num_ngrams()[1] and cut.num_ngrams()[2] < lm.num_ngrams()[2]
    trigrams = lm.rows_of(cut.ngram_ids(3))
    assert not np.any(tables[2].count[trigrams] <= 1)  # no singleton trigram is left
    assert _closed(cut) and _distribution_sum(cut, ["W1", "W2"]) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(AsrkdError, match="unigrams"):
        prune(lm, max_ngrams=10)


# ---- perplexity and OOV rate ------------------------------------------------------------------------
def test_oov_rate_and_perplexity_on_a_toy_case(tmp_path: Path) -> None:
    (tmp_path / "lm.arpa").write_text(HAND_ARPA)
    lm = load_arpa(tmp_path / "lm.arpa")
    s = score_text(lm, [["A", "B", "ZEBRA"], ["C", "GIRAFFE", "A", "B"]])
    assert (s.sentences, s.words, s.oovs) == (2, 7, 2)
    assert s.oov_rate == pytest.approx(2 / 7)
    # Scored: A B </s> | C A B </s> ("ZEBRA" and "GIRAFFE" are left out, but stay as <unk> in the history).
    expected = (lm.logprob("A", [BOS]) + lm.logprob("B", [BOS, "A"]) + lm.logprob(EOS, ["B", "ZEBRA"])
                + lm.logprob("C", [BOS]) + lm.logprob("A", ["C", "GIRAFFE"]) + lm.logprob("B", ["GIRAFFE", "A"])
                + lm.logprob(EOS, ["A", "B"]))
    assert s.logprob == pytest.approx(expected)
    assert lm.logprob(EOS, ["B", "ZEBRA"]) == pytest.approx(-1.0)  # <unk> matches no bigram: p(</s>)
    assert s.ppl == pytest.approx(10 ** (-expected / 7))
    with_oov = expected + lm.logprob("ZEBRA", ["A", "B"]) + lm.logprob("GIRAFFE", [BOS, "C"])
    assert s.ppl_with_oov == pytest.approx(10 ** (-with_oov / 9))


def test_word_loop_is_a_closed_uniform_grammar(tmp_path: Path) -> None:
    lm = word_loop(["YES", "NO", "YES"])
    assert lm.vocab == [BOS, EOS, "NO", "YES"] and lm.unk == -1
    for h in [[], [BOS], ["YES"], ["NO", "NO"]]:
        assert lm.logprob("YES", h) == pytest.approx(-math.log10(3))
        assert _distribution_sum(lm, h) == pytest.approx(1.0)
    write_arpa(lm, tmp_path / "g.arpa")
    back = load_arpa(tmp_path / "g.arpa")
    assert back.logprob("NO", ["YES"]) == pytest.approx(-math.log10(3), abs=1e-7)
    s = score_text(back, [["YES", "MAYBE"]])
    assert s.oovs == 1 and s.ppl_with_oov is None


# ---- the train-lm step -------------------------------------------------------------------------------
@pytest.fixture()
def lm_inputs(tmp_path: Path) -> LMInputs:
    sents = _sentences(10, 600)
    text = tmp_path / "lm_text.txt"
    text.write_text("".join(" ".join(s).lower() + ".\n" for s in sents[:500]))  # normalised on reading
    train = _write_data_dir(tmp_path / "train", {f"S-u{i:03d}": " ".join(s) for i, s in enumerate(sents[500:560])})
    dev = _write_data_dir(tmp_path / "dev", {f"S-d{i:03d}": " ".join(s) + " OOVWORD" for i, s in enumerate(sents[560:580])})
    test = _write_data_dir(tmp_path / "test", {f"S-t{i:03d}": " ".join(s) for i, s in enumerate(sents[580:])})
    return LMInputs((text,), (train,), dev, test)


def test_train_lm_writes_arpa_and_json_and_skips_when_complete(tmp_path: Path, lm_inputs: LMInputs) -> None:
    out = tmp_path / "lm"
    cfg = LMConfig(order=3, prune_threshold=1e-4)
    res = train_lm(cfg, lm_inputs, out)
    assert (out / ".done").is_file() and (out / "lm.arpa").is_file()
    on_disk = json.loads((out / "lm.json").read_text())
    assert on_disk["ngrams"] == res["ngrams"] == load_arpa(out / "lm.arpa").num_ngrams()
    assert on_disk["dev"]["oovs"] == 20 and on_disk["dev"]["oov_rate"] > 0 and on_disk["test"]["ppl"] > 1
    assert sum(on_disk["unpruned"]["ngrams"]) > sum(on_disk["ngrams"])
    assert on_disk["test"]["sentences_in_lm_text"] >= 0
    assert on_disk["open_vocabulary"] and "W0" in load_arpa(out / "lm.arpa").index
    # The ARPA that train-lm wrote gives back the in-memory model's probabilities.
    from asrkd.lm.evaluate import sentence_queries
    from asrkd.lm.train import estimate, read_text_file, read_transcripts

    text = read_text_file(lm_inputs.texts[0])
    full, info = estimate(cfg, text, read_transcripts(lm_inputs.train_dirs[0]))
    mem, _ = prune(full, threshold=cfg.prune_threshold)
    disk = load_arpa(out / "lm.arpa")
    w, c, _ = sentence_queries(mem, text[:100] + read_transcripts(lm_inputs.dev))
    assert np.max(np.abs(mem.logprob_ids(w, c) - disk.logprob_ids(w, c))) < 1e-6
    mtime = (out / "lm.arpa").stat().st_mtime_ns
    assert train_lm(cfg, lm_inputs, out)["fingerprint"] == res["fingerprint"]  # skipped
    assert (out / "lm.arpa").stat().st_mtime_ns == mtime
    with pytest.raises(AsrkdError, match="other inputs or settings"):
        train_lm(LMConfig(order=2), lm_inputs, out)
    assert train_lm(LMConfig(order=2), lm_inputs, out, force=True)["order"] == 2


def test_train_lm_refuses_dev_or_test_as_training_text(tmp_path: Path, lm_inputs: LMInputs) -> None:
    out = tmp_path / "lm"
    with pytest.raises(AsrkdError, match="never trained on dev"):
        train_lm(LMConfig(), LMInputs((), (lm_inputs.dev,), lm_inputs.dev, lm_inputs.test), out)
    with pytest.raises(AsrkdError, match="data directory's text"):
        train_lm(LMConfig(), LMInputs((lm_inputs.test / "text",), (), lm_inputs.dev, lm_inputs.test), out)
    copy = tmp_path / "copy_of_test"
    shutil.copytree(lm_inputs.test, copy)
    with pytest.raises(AsrkdError, match="shares .* utterance"):
        train_lm(LMConfig(), LMInputs((), (copy,), lm_inputs.dev, lm_inputs.test), out)
    assert not (out / ".done").exists()


def test_capped_vocabulary_keeps_transcript_words_and_maps_the_rest_to_unk() -> None:
    text = [["A", "A", "A", "B", "B", "C"], ["D"]]
    vocab = build_vocab(text, [["Z"]], max_vocab=2)
    assert vocab == [UNK, BOS, EOS, "A", "Z"]


# ---- KenLM (only where its lmplz is installed) ------------------------------------------------------
@pytest.mark.skipif(shutil.which("lmplz") is None, reason="KenLM's lmplz is not installed")
def test_perplexity_matches_kenlm_lmplz(tmp_path: Path) -> None:
    train, held = _sentences(11, 3000, vocab=200), _sentences(12, 200, vocab=200)
    (tmp_path / "train.txt").write_text("".join(" ".join(s) + "\n" for s in train))
    with open(tmp_path / "train.txt") as fin, open(tmp_path / "kenlm.arpa", "w") as fout:
        subprocess.run(["lmplz", "-o", "3", "-S", "200M", "-T", str(tmp_path)], stdin=fin, stdout=fout,
                       stderr=subprocess.DEVNULL, check=True)
    ours, _ = _train(train, 3)
    theirs = load_arpa(tmp_path / "kenlm.arpa")
    assert score_text(ours, held).ppl == pytest.approx(score_text(theirs, held).ppl, rel=1e-5)


def test_lm_text_files_are_normalised_and_may_be_gzipped(tmp_path: Path) -> None:
    from asrkd.lm.train import read_text_file

    text = "Hello, world -- it's 5 o'clock!\n\n  \nSecond   line.\n"
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(text.encode()))
    expected = [["HELLO", "WORLD", "IT'S", "5", "O'CLOCK"], ["SECOND", "LINE"]]
    assert read_text_file(tmp_path / "a.txt") == read_text_file(tmp_path / "a.txt.gz") == expected


def test_train_lm_command(tmp_path: Path, lm_inputs: LMInputs, capsys: pytest.CaptureFixture) -> None:
    from asrkd.cli import main

    args = ["train-lm", "--out", str(tmp_path / "lm"), "--dev", str(lm_inputs.dev), "--test", str(lm_inputs.test)]
    assert main([*args, "--train-data", str(lm_inputs.test)]) == 2
    assert "never trained on test" in capsys.readouterr().err
    assert main([*args, "--text", str(lm_inputs.texts[0]), "--train-data", str(lm_inputs.train_dirs[0]),
                 "--set", "order=2"]) == 0
    out = capsys.readouterr().out
    assert "2-grams" in out and "dev: perplexity" in out and "OOV rate" in out
    assert load_arpa(tmp_path / "lm" / "lm.arpa").order == 2


def test_upper_case_unk_is_the_unknown_word(tmp_path: Path) -> None:
    (tmp_path / "lm.arpa").write_text(HAND_ARPA.replace("<unk>", "<UNK>"))
    lm = load_arpa(tmp_path / "lm.arpa")
    assert lm.logprob("ZEBRA") == pytest.approx(-2.0) and not lm.in_vocab("<UNK>")
    assert score_text(lm, [["ZEBRA", "A"]]).oovs == 1


def test_a_capped_vocabulary_counts_the_other_words_as_unk(tmp_path: Path) -> None:
    sents = _sentences(15, 500, vocab=100)
    cfg = LMConfig(order=3, max_vocab=20)
    text = tmp_path / "t.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in sents))
    train_lm(cfg, LMInputs((text,)), tmp_path / "lm")
    lm = load_arpa(tmp_path / "lm" / "lm.arpa")
    assert lm.vocab_size == 23 and lm.unk >= 0
    counts = Counter(w for s in sents for w in s)
    rare = min(counts, key=counts.get)
    assert not lm.in_vocab(rare) and lm.logprob(rare) == lm.logprob(UNK) > math.log10(0.01)
    assert lm.num_ngrams()[1] > 0 and any(UNK in lm.vocab[i] for i in lm.ngram_ids(2).ravel())
    for h in [[], [BOS], [UNK], ["W0", UNK], [UNK, UNK]]:
        assert _distribution_sum(lm, h) == pytest.approx(1.0, abs=1e-6), h
