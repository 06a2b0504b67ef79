"""The one transcript normalisation (asrkd.text.normalize_text)."""

from __future__ import annotations

import pytest

from asrkd.text import normalize_text

CASES = [
    ("Hello, world -- it's 5 o'clock!", "HELLO WORLD IT'S 5 O'CLOCK"),  # case, punctuation, digits kept
    ("don\u2019t", "DON'T"),  # typographic apostrophe
    ("well-known and/or snake_case", "WELL KNOWN AND OR SNAKE CASE"),  # hyphen, slash, underscore split
    ("'quoted' words' and rock 'n' roll", "QUOTED WORDS AND ROCK N ROLL"),  # edge apostrophes dropped
    ("O'Brien's", "O'BRIEN'S"),  # inner apostrophes kept
    (" a\t b\n  c ", "A B C"),  # white space collapsed
    ("\u201cSmart quotes\u201d; (aside) Mr. Smith.", "SMART QUOTES ASIDE MR SMITH"),
    ("\ufb01ne \uff21\uff22\uff23", "FINE ABC"),  # NFKC: ligature, full-width letters
    ("caf\u00e9 na\u00efve", "CAF\u00c9 NA\u00cfVE"),  # letters with accents are letters
    ("...!? -- ''", ""),  # nothing left
]


@pytest.mark.parametrize("raw,expected", CASES)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize("raw", [c[0] for c in CASES])
def test_idempotent(raw: str) -> None:
    once = normalize_text(raw)
    assert normalize_text(once) == once


def test_corpus_styles_agree() -> None:
    """LibriSpeech (upper, bare), TIMIT (sentence case, period) and LJ Speech (punctuated)
    transcripts of the same words normalise to the same string."""
    forms = ["SHE HAD YOUR DARK SUIT", "She had your dark suit.", "She had, \u201cyour\u201d dark suit!"]
    assert {normalize_text(f) for f in forms} == {"SHE HAD YOUR DARK SUIT"}
