"""Small ARPA writers for decoding graphs (the word n-gram LM proper is ``asrkd train-lm``'s)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_text


def write_grammar_arpa(words: Sequence[str], path: Path) -> None:
    """A unigram ARPA in which every word and the sentence end are equally likely: the grammar
    "any sequence of these words" (yes/no, digits). ``<s>`` only starts sentences (-99)."""
    words = sorted(set(words))
    if not words:
        raise AsrkdError("a grammar needs at least one word")
    lp = math.log10(1.0 / (len(words) + 1))
    lines = ["\\data\\", f"ngram 1={len(words) + 2}", "", "\\1-grams:", "-99\t<s>", f"{lp:.6f}\t</s>"]
    lines += [f"{lp:.6f}\t{w}" for w in words]
    lines += ["", "\\end\\", ""]
    atomic_write_text(Path(path), "\n".join(lines))
