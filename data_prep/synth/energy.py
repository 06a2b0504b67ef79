"""A listening-free check of reference timings: mean power inside reference pauses versus
inside words, over a whole split. Correct timings put pauses where the engine made silence,
so the pause power is far below the word power (tens of dB); timings shifted by even a few
tens of milliseconds put word onsets and endings into the "pauses" and close the gap.

Pauses are the gaps between consecutive words (and before the first / after the last word)
of at least ``min_pause_s``, shrunk by ``margin_s`` at both ends so that the check measures
the inside of a pause, not its edges.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from asrkd.data.audio import load_audio
from asrkd.data.datadir import read_data_dir
from asrkd.errors import AsrkdError

from .reference import parse_ctm


def pause_word_energy(
    split_dir: Path, min_pause_s: float = 0.05, margin_s: float = 0.01, sample_rate: int = 16000
) -> dict[str, float]:
    """Over all utterances of ``split_dir`` (with ``ref_word.ctm``): total power inside words
    and inside pauses, in dB re full scale, and their difference ``pause_minus_word_db``."""
    split_dir = Path(split_dir)
    ctm_path = split_dir / "ref_word.ctm"
    if not ctm_path.is_file():
        raise AsrkdError(f"no ref_word.ctm in {split_dir}")
    d = read_data_dir(split_dir)
    ctm = parse_ctm(ctm_path.read_text(encoding="utf-8"))
    acc = {"word": [0.0, 0], "pause": [0.0, 0]}
    for utt in d.utts:
        words = ctm.get(utt, [])
        if not words:
            continue
        x = load_audio(d.wav[d.recording_of(utt)], sample_rate).astype(np.float64)
        n = len(x)
        edges = [0.0] + [t for w in words for t in (w.start, w.end)] + [n / sample_rate]
        for i, (a, b) in enumerate(zip(edges, edges[1:])):
            kind = "word" if i % 2 else "pause"
            if kind == "pause":
                if b - a < min_pause_s:
                    continue
                a, b = a + margin_s, b - margin_s
            seg = x[int(round(a * sample_rate)) : int(round(b * sample_rate))]
            acc[kind][0] += float(np.sum(seg**2))
            acc[kind][1] += len(seg)

    def db(total: float, count: int) -> float:
        return 10 * math.log10(total / count + 1e-12) if count else float("nan")

    word_db = db(*acc["word"])
    pause_db = db(*acc["pause"])
    return {
        "utts": len(d.utts),
        "word_seconds": round(acc["word"][1] / sample_rate, 2),
        "pause_seconds": round(acc["pause"][1] / sample_rate, 2),
        "word_power_db": round(word_db, 2),
        "pause_power_db": round(pause_db, 2),
        "pause_minus_word_db": round(pause_db - word_db, 2),
    }
