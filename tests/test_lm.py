"""Unit n-gram LM: normalisation, smoothing, a Kneser-Ney check by hand formula, files."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from asrkd.lang.unit_lm import UnitLM, estimate_kn, lm_lookup


def _random_sentences(seed: int, n: int, units: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    # A skewed unit distribution with some structure (unit u often followed by u+1).
    out = []
    for _ in range(n):
        s = [int(rng.integers(0, units))]
        for _ in range(int(rng.integers(0, 9))):
            s.append((s[-1] + 1) % units if rng.random() < 0.6 else int(rng.integers(0, units)))
        out.append(s)
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_state_is_a_distribution(order: int) -> None:
    V = 12  # units 10 and 11 never occur in training
    lm = estimate_kn(_random_sentences(0, 150, 10), V, order)
    for s in range(lm.num_states):
        probs = [math.exp(lm_lookup(s, w, *lm.arrays())[0]) for w in range(V + 1)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert min(probs) > 0.0  # smoothing: nothing has zero probability


def test_unseen_ngrams_get_mass_but_less_than_seen() -> None:
    sents = [[0, 1, 2]] * 20 + [[2, 1, 0]] * 5
    lm = estimate_kn(sents, 5, 3)
    bos = lm.bos
    assert lm.logprob([bos, 0, 1], 2) > math.log(0.8)  # deterministic continuation
    unseen = lm.logprob([bos, 0, 1], 0)  # trigram (0 1 0) never seen
    assert -math.inf < unseen < lm.logprob([bos, 0, 1], 2)
    never = lm.logprob([bos], 4)  # unit 4 never seen at all
    assert never > -math.inf
    assert never < lm.logprob([bos], 0)


def test_bigram_matches_hand_written_kneser_ney() -> None:
    """Order 2 against a direct transcription of the interpolated Kneser-Ney formula."""
    sents = _random_sentences(3, 60, 6)
    V = 7
    BOS, EOS = V + 1, V
    lm = estimate_kn(sents, V, 2)
    big = Counter()
    for s in sents:
        p = [BOS] + s + [EOS]
        big.update(zip(p[:-1], p[1:]))
    cont = Counter(w for (_, w) in big)  # N1+(. w): distinct left neighbours (BOS included)

    def disc(counts: Counter) -> float:
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        return n1 / (n1 + 2 * n2) if n1 and n2 else 0.5  # the documented fallback

    d1, d2 = disc(cont), disc(big)
    tot1 = sum(cont.values())

    def p1(w: int) -> float:
        return max(cont[w] - d1, 0) / tot1 + d1 * len(cont) / tot1 / (V + 1)

    for h in [BOS, 0, 3, 5]:
        ch = sum(c for (a, _), c in big.items() if a == h)
        types = sum(1 for (a, _) in big if a == h)
        for w in range(V + 1):
            expected = max(big[(h, w)] - d2, 0) / ch + d2 * types / ch * p1(w)
            assert lm.logprob([h], w) == pytest.approx(math.log(expected), rel=1e-5)
    # An unseen context falls back to the unigram distribution.
    assert lm.logprob([6], 2) == pytest.approx(math.log(p1(2)), rel=1e-5)


def test_sentence_logprob_and_save_load(tmp_path) -> None:  # noqa: ANN001
    lm = estimate_kn(_random_sentences(1, 80, 8), 8, 3)
    sent = [1, 2, 3, 7]
    hist = [lm.bos]
    total = 0.0
    for u in sent + [lm.eos]:
        total += lm.logprob(hist, u)
        hist.append(u)
    assert lm.sentence_logprob(sent) == pytest.approx(total, rel=1e-6)
    lm.save(tmp_path / "lm.npz")
    back = UnitLM.load(tmp_path / "lm.npz")
    assert back.sentence_logprob(sent) == pytest.approx(lm.sentence_logprob(sent))
    assert back.contexts == lm.contexts


def test_arpa_export_counts_and_probabilities(tmp_path) -> None:  # noqa: ANN001
    lm = estimate_kn([[0, 1], [1, 0, 1]], 2, 3)
    lm.write_arpa(tmp_path / "lm.arpa", ["a", "b"])
    text = (tmp_path / "lm.arpa").read_text()
    header = dict(line.split("=") for line in text.splitlines() if line.startswith("ngram "))
    for k, n in header.items():
        section = text.split(f"\\{k.split()[1]}-grams:\n")[1].split("\n\n")[0]
        assert len(section.strip().splitlines()) == int(n)
    line = next(l for l in text.splitlines() if l.endswith("\t<s>\ta") or "\t<s> a" in l)
    assert float(line.split("\t")[0]) == pytest.approx(lm.logprob([lm.bos], 0) / math.log(10), abs=1e-5)
