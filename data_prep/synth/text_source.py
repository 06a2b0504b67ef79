"""Public-domain English sentences for the synthetic corpus.

Source: the King James Version of the Bible (1611, public domain; in the US and most of the
world, see the README for the Crown-patent caveat in the UK), shipped by the Debian packages
``bible-kjv-text`` (data) and ``bible-kjv`` (the ``bible`` reader), which ``tools/setup.sh``
installs. Nothing of the text is committed here: it is read from the installed package.

Alternatively ``--text-file`` takes any UTF-8 file; it goes through the same filter.

Filter (documented in data_prep/synth/README.md):
- a verse is split into sentences after ``.``, ``?`` or ``!``; the sentence keeps its commas,
  colons and semicolons (the engines pause there);
- characters limited to ASCII letters, space, apostrophe and ``, ; : . ? !`` (no digits, which
  the engines would expand into words the transcript does not have; no parentheses, hyphens or
  quotes, whose spoken form differs between engines);
- ``min_words`` to ``max_words`` words;
- words written in capitals (``LORD``) are title-cased for synthesis, so no engine spells them
  out as letters; the transcript is :func:`asrkd.text.normalize_text` of the sentence and its
  words are exactly the letter/apostrophe runs of the sentence (checked);
- duplicates (after normalisation) removed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from asrkd.errors import AsrkdError
from asrkd.text import normalize_text

_ALLOWED = re.compile(r"^[A-Za-z][A-Za-z ,;:.?!']*[.?!]$")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_SENT_END = re.compile(r"(?<=[.?!])\s+")
_VERSE = re.compile(r"^\s+\d+\s+(.*)$")


@dataclass(frozen=True)
class Sentence:
    """``synth``: text given to the engines; ``words``: normalised transcript tokens;
    ``spans``: (start, end) character span of each word in ``synth``."""

    synth: str
    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]

    @property
    def transcript(self) -> str:
        return " ".join(self.words)


def kjv_text() -> str:
    """The whole KJV as plain text, one verse per paragraph (via the ``bible`` program)."""
    exe = shutil.which("bible")
    if exe is None or not Path("/usr/lib/bible.data").is_file():
        raise AsrkdError(
            "the synthetic corpus reads its sentences from the Debian packages bible-kjv and "
            "bible-kjv-text; run tools/setup.sh (or apt-get install bible-kjv bible-kjv-text), "
            "or pass --text-file"
        )
    proc = subprocess.run([exe, "gen1:1-rev22:21"], capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AsrkdError(f"`bible` failed: {proc.stderr.decode(errors='replace')[:200]}")
    verses: list[str] = []
    for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
        m = _VERSE.match(line)
        if m:
            verses.append(m.group(1))
        elif line.strip() and verses and line[:1] != " " and not re.match(r"^\S.* \d+$", line):
            verses[-1] += " " + line.strip()  # wrapped continuation of the verse
    return "\n".join(verses)


def make_sentence(raw: str, min_words: int, max_words: int) -> Sentence | None:
    """Filter and prepare one sentence; None if it does not pass the filter."""
    s = " ".join(raw.split())
    if not _ALLOWED.match(s):
        return None
    matches = list(_WORD.finditer(s))
    if not (min_words <= len(matches) <= max_words):
        return None
    synth = s
    for m in matches:
        w = m.group(0)
        if len(w) > 1 and w.isupper():  # LORD -> Lord: same length, spans unchanged
            synth = synth[: m.start()] + w.capitalize() + synth[m.end():]
    words = tuple(m.group(0).upper() for m in matches)
    if normalize_text(s).split() != list(words):
        return None
    return Sentence(synth=synth, words=words, spans=tuple((m.start(), m.end()) for m in matches))


def raw_sentences(text: str) -> Iterator[str]:
    """Every sentence of ``text`` (paragraphs = lines, split after ``.``, ``?``, ``!``), unfiltered."""
    for para in text.splitlines():
        yield from _SENT_END.split(para.strip())


def load_sentences(text: str, min_words: int, max_words: int) -> list[Sentence]:
    """All sentences of ``text`` (paragraphs = lines) that pass the filter, deduplicated, in
    text order."""
    seen: set[str] = set()
    out: list[Sentence] = []
    for raw in raw_sentences(text):
        sent = make_sentence(raw, min_words, max_words)
        if sent is None or sent.transcript in seen:
            continue
        seen.add(sent.transcript)
        out.append(sent)
    return out


def split_sentences(
    sentences: list[Sentence], counts: dict[str, int], seed: int
) -> dict[str, list[Sentence]]:
    """Disjoint sentence pools per split, ``counts[split]`` each, chosen by a seeded hash order
    (stable when the source grows). Raises AsrkdError if the source is too small."""
    need = sum(counts.values())
    if need > len(sentences):
        raise AsrkdError(f"text source has {len(sentences)} usable sentences, {need} needed")

    def key(s: Sentence) -> str:
        return hashlib.sha256(f"{seed}:{s.transcript}".encode()).hexdigest()

    order = sorted(sentences, key=key)
    out: dict[str, list[Sentence]] = {}
    pos = 0
    for split, n in counts.items():
        out[split] = order[pos : pos + n]
        pos += n
    return out
