"""Reference alignments: the timed words and phones an engine reports, their check against
the audio, and Kaldi CTM lines.

Conventions shared by every engine (README.md, "Engine conventions"):
- the phone tier tiles the audio from 0 to its end: pauses are phones named ``SIL``;
- the word tier has no pauses; a word spans its first phone's start to its last phone's end;
- times are seconds; CTM lines are ``<utt> 1 <start> <dur> <token>`` with 3 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIL = "SIL"
MAX_END_GAP_S = 0.030  # last phone must end within this of the audio end (issue 3)


@dataclass(frozen=True)
class Timed:
    token: str
    start: float  # seconds
    end: float  # seconds


@dataclass
class Synthesis:
    """What an engine returns: ``audio: (N,)`` float32 at ``sample_rate``, the word tier and
    the phone tier (``phones`` include ``SIL`` pauses)."""

    audio: np.ndarray
    sample_rate: int
    words: list[Timed]
    phones: list[Timed]


class TimingError(Exception):
    """An engine's timings cannot be turned into a reference; the utterance is dropped."""


def merge_pauses(phones: list[Timed]) -> list[Timed]:
    """Join adjacent ``SIL`` phones and remove zero-length pauses."""
    out: list[Timed] = []
    for p in phones:
        if p.token == SIL and p.end - p.start <= 0:
            continue
        if out and p.token == SIL and out[-1].token == SIL:
            out[-1] = Timed(SIL, out[-1].start, p.end)
        else:
            out.append(p)
    return out


def check_reference(
    words: list[Timed], phones: list[Timed], transcript: list[str], duration: float
) -> str | None:
    """The issue's checks; returns the reason of the first failure, or None if all pass.

    - word sequence equals the transcript;
    - every phone and word has positive length; times monotonic; phones tile [0, end];
    - every word starts and ends on phone boundaries;
    - the last phone ends within 30 ms of the audio length.
    """
    if [w.token for w in words] != transcript:
        return "word sequence differs from transcript"
    if not phones:
        return "no phones"
    tol = 1e-6
    if abs(phones[0].start) > tol:
        return "phones do not start at 0"
    for a, b in zip(phones, phones[1:]):
        if abs(b.start - a.end) > tol:
            return "phones do not tile the audio (gap or overlap)"
    for p in phones:
        if not p.end > p.start:
            return "zero or negative phone length"
    for a, b in zip(words, words[1:]):
        if b.start < a.end - tol:
            return "words overlap or are out of order"
    bounds = {round(p.start, 6) for p in phones} | {round(p.end, 6) for p in phones}
    for w in words:
        if not w.end > w.start:
            return "zero or negative word length"
        if round(w.start, 6) not in bounds or round(w.end, 6) not in bounds:
            return "word boundary is not a phone boundary"
    if abs(phones[-1].end - duration) > MAX_END_GAP_S:
        return f"last phone ends {phones[-1].end - duration:+.3f} s from the audio end"
    return None


def words_from_groups(groups: list[tuple[str, list[Timed]]]) -> list[Timed]:
    """Word tier from ``(word, its phones)`` groups."""
    return [Timed(w, ph[0].start, ph[-1].end) for w, ph in groups if ph]


def ctm_lines(utt: str, items: list[Timed]) -> list[str]:
    """Kaldi CTM lines ``<utt> 1 <start> <dur> <token>`` (rounded to ms, end-consistent)."""
    out = []
    for it in items:
        s = round(it.start, 3)
        e = round(it.end, 3)
        out.append(f"{utt} 1 {s:.3f} {e - s:.3f} {it.token}")
    return out


def parse_ctm(text: str) -> dict[str, list[Timed]]:
    """Read CTM text back into ``{utt: [Timed, ...]}`` (file order)."""
    out: dict[str, list[Timed]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        start, dur = float(parts[2]), float(parts[3])
        out.setdefault(parts[0], []).append(Timed(parts[4], start, start + dur))
    return out
