"""WER/CER: hand-counted cases, empty conventions, corpus sums, files, and jiwer agreement."""

from __future__ import annotations

import math

import jiwer
import numpy as np
import pytest

from asrkd.errors import AsrkdError
from asrkd.evaluation.scoring import EPS, align, count_errors, score_texts, score_utterance, write_scoring


def _counts(ref: str, hyp: str) -> tuple[int, int, int, int]:
    c = score_utterance("u", ref, hyp).words
    return c.ref, c.sub, c.dele, c.ins


@pytest.mark.parametrize(
    "ref,hyp,expected",
    [
        ("a b c d", "a b c d", (4, 0, 0, 0)),
        ("a b c d", "a x c d", (4, 1, 0, 0)),  # one substitution
        ("a b c d", "a c d", (4, 0, 1, 0)),  # one deletion
        ("a b c d", "a b b c d", (4, 0, 0, 1)),  # one insertion
        ("a b c d", "x a b d", (4, 0, 1, 1)),  # insert x, delete c
        ("a b", "", (2, 0, 2, 0)),  # empty hypothesis: all deletions
        ("", "a b c", (0, 0, 0, 3)),  # empty reference: all insertions
        ("", "", (0, 0, 0, 0)),
        ("yes no yes", "no no no yes", (3, 1, 0, 1)),
    ],
)
def test_hand_counted(ref: str, hyp: str, expected: tuple[int, int, int, int]) -> None:
    assert _counts(ref, hyp) == expected


def test_rates_and_empty_reference_conventions() -> None:
    res = score_texts({"u1": "a b c d", "u2": "e f"}, {"u1": "a x c d", "u2": "e f g"})
    assert (res.words.ref, res.words.errors) == (6, 2)
    assert res.wer == pytest.approx(100 * 2 / 6)  # corpus sum, not a mean of per-utt rates
    assert res.sentence_errors == 2
    only_empty = score_texts({"u": ""}, {"u": "a"})
    assert math.isinf(only_empty.wer)
    assert score_texts({"u": ""}, {"u": ""}).wer == 0.0
    # A missing hypothesis is an empty one; a hypothesis without reference is refused.
    assert score_texts({"u": "a b"}, {}).words.dele == 2
    with pytest.raises(AsrkdError):
        score_texts({"u": "a"}, {"u": "a", "v": "b"})


def test_cer_counts_characters_without_spaces() -> None:
    u = score_utterance("u", "ab cd", "abcd")
    assert u.chars.ref == 4 and u.chars.errors == 0
    assert u.words.errors == 2  # but the words differ: "abcd" vs "ab cd"
    assert score_utterance("u", "cat", "cut").chars.sub == 1


def test_alignment_pairs() -> None:
    pairs = align("a b c".split(), "a c d".split())
    assert [p for p in pairs if p[0] == EPS or p[1] == EPS or p[0] != p[1]]
    assert count_errors(pairs).errors == 2
    assert [r for r, _ in pairs if r != EPS] == ["a", "b", "c"]
    assert [h for _, h in pairs if h != EPS] == ["a", "c", "d"]


def test_agrees_with_jiwer_on_random_sentences() -> None:
    rng = np.random.default_rng(0)
    vocab = list("abcdef")
    refs, hyps = {}, {}
    for i in range(200):
        ref = " ".join(rng.choice(vocab, size=rng.integers(1, 12)))
        hyp = " ".join(rng.choice(vocab, size=rng.integers(1, 12)))
        u = score_utterance(f"u{i}", ref, hyp)
        out = jiwer.process_words(ref, hyp)
        ours = u.words
        assert ours.errors == out.substitutions + out.deletions + out.insertions
        # S/D/I splits of equally short alignments may differ, but D - I is fixed by the lengths.
        assert ours.dele - ours.ins == out.deletions - out.insertions
        c = jiwer.process_characters(ref.replace(" ", ""), hyp.replace(" ", ""))
        assert u.chars.errors == c.substitutions + c.deletions + c.insertions
        refs[f"u{i}"], hyps[f"u{i}"] = ref, hyp
    res = score_texts(refs, hyps)
    ordered = sorted(refs)
    assert res.wer / 100 == pytest.approx(jiwer.wer([refs[u] for u in ordered], [hyps[u] for u in ordered]))


def test_write_scoring_files(tmp_path) -> None:  # noqa: ANN001
    res = score_texts({"s-1": "yes no yes", "s-2": "no no"}, {"s-1": "yes yes yes", "s-2": "no"})
    write_scoring(tmp_path, res, extra={"decode_rtf": 0.01})
    import json

    summary = json.loads((tmp_path / "wer.json").read_text())
    assert summary["wer"]["errors"] == 2 and summary["wer"]["ref"] == 5
    assert summary["decode_rtf"] == 0.01
    per_utt = (tmp_path / "per_utt").read_text().splitlines()
    assert "s-1 #csid 2 1 0 0" in per_utt and "s-2 #csid 1 0 0 1" in per_utt
    errors = (tmp_path / "errors").read_text()
    assert "1 no -> yes" in errors
    assert (tmp_path / "wer.txt").read_text().startswith("%WER 40.00 [ 2 / 5, 0 ins, 1 del, 1 sub ]")
    assert (tmp_path / "hyp").read_text() == "s-1 yes yes yes\ns-2 no\n"


def test_char_counts_are_those_of_the_char_alignment() -> None:
    """CER counts (kaldialign's edit distance) split S/D/I as the printed alignment would."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        ref = "".join(rng.choice(list("ab c"), size=rng.integers(0, 15)))
        hyp = "".join(rng.choice(list("ab c"), size=rng.integers(0, 15)))
        c = score_utterance("u", ref, hyp).chars
        a = count_errors(align(list(ref.replace(" ", "")), list(hyp.replace(" ", ""))))
        assert (c.ref, c.sub, c.dele, c.ins) == (a.ref, a.sub, a.dele, a.ins)
