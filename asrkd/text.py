"""The one text normalisation used by every data preparation script.

Rules: Unicode NFKC; upper case; typographic apostrophes -> ``'``; hyphens and slashes split
words; every other character that is not a letter, digit or an apostrophe inside a word is
dropped; white space collapsed. ``"Hello, world -- it's 5 o'clock!"`` -> ``HELLO WORLD IT'S 5
O'CLOCK``. Numbers are not spelled out here (a corpus that needs it, e.g. LJ Speech, provides
a normalised column).
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_SPLITTERS = re.compile(r"[-\u2010-\u2015/_]+")
_DROP = re.compile(r"[^\w' ]+")
_EDGE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize_text(text: str) -> str:
    """Normalise a transcript (see module docstring). Returns '' for text with no words."""
    s = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).upper()
    s = _SPLITTERS.sub(" ", s)
    s = _DROP.sub(" ", s.replace("_", " "))
    s = _EDGE_APOSTROPHE.sub(" ", s)
    return " ".join(s.split())
