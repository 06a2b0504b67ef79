"""``scoring`` benchmark: WER + CER scoring time of an LJ Speech-sized test set.

``score_seconds_2620`` = wall time of :func:`asrkd.evaluation.scoring.score_texts` (word
alignments, word and character counts) on 2,620 utterances (the size of LJ Speech's usual test
split): the first 2,620 normalised lines of ``ljspeech/lm/metadata_other.csv`` as references,
each scored against a copy with ~10 % of its words substituted, deleted or inserted (fixed seed).
Median of ``--runs`` runs. ``score_cer_2620`` / ``score_wer_2620`` are the rates, so that two
implementations can be checked for the same totals.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from bench_common import BenchSkipped, say

NUM_UTTS = 2620


def _corrupt(words: list[str], vocab: list[str], rng: random.Random) -> list[str]:
    """~10 % word errors: each word substituted, dropped or followed by an inserted word."""
    out: list[str] = []
    for w in words:
        r = rng.random()
        if r < 0.04:
            out.append(rng.choice(vocab))
        elif r < 0.07:
            continue
        else:
            out.append(w)
        if rng.random() < 0.03:
            out.append(rng.choice(vocab))
    return out


def run(args: argparse.Namespace) -> dict[str, float]:
    path = Path(args.data) / "ljspeech" / "lm" / "metadata_other.csv"
    if not path.is_file():
        raise BenchSkipped(f"no {path}")
    from asrkd.evaluation.scoring import score_texts
    from asrkd.text import normalize_text

    lines = path.read_text(encoding="utf-8").splitlines()[:NUM_UTTS]
    refs = {ln.split("|")[0]: normalize_text(ln.split("|")[2]) for ln in lines}
    vocab = sorted({w for t in refs.values() for w in t.split()})
    rng = random.Random(0)
    hyps = {u: " ".join(_corrupt(t.split(), vocab, rng)) for u, t in refs.items()}
    walls = []
    res = None
    for i in range(args.runs):
        t0 = time.perf_counter()
        res = score_texts(refs, hyps)
        walls.append(time.perf_counter() - t0)
        say(f"[bench] scoring run {i + 1}/{args.runs}: {walls[-1]:.3f} s")
    assert res is not None
    return {"score_seconds_2620": round(statistics.median(walls), 4), "score_wer_2620": round(res.wer, 4),
            "score_cer_2620": round(res.cer, 4), "score_chars_2620": float(res.chars.ref)}
