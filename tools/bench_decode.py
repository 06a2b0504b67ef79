"""``unit_decode`` benchmark: the unit-LM decoder's speed (real-time factor) and the WER it reaches.

``unit_lm_decode_rtf`` = decoding wall time / audio time, on one core, at the default beam
(:class:`asrkd.decode.DecodeConfig`), acoustic model excluded (posteriors are given). The
posteriors are synthetic but shaped like a DNN's: LJ Speech test transcripts (the last 10% of
the subset) are tokenised into the sentencepiece units of a lang made from the first 90%, passed
through the unit HMMs with random state durations (about 6 frames per state, optional silence
between words) and turned into peaky log posteriors with 30% of the frames won by a wrong
class, in runs of about 6 frames (a DNN's errors last several frames). The unit LM (order 3) is estimated on the training 90%. ``decode_wer`` is the WER
of those decodes at the same beam; ``unit_lm_decode_greedy_wer`` the frame-argmax baseline's. (The
word graph's ``decode_rtf`` is ``tools/bench_graph.py``'s, on the same synthetic posteriors.)
Median of ``--runs`` timed runs after a warm-up (numba compile/cache load).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import BenchSkipped, say

CONFUSION = 0.3  # fraction of frames whose arg-max is a wrong class (about 70% frame accuracy)
RUN_FRAMES = 6.0  # mean length of a run of frames won by the same wrong class
MEAN_FRAMES_PER_STATE = 6.0


def utterance_posteriors(lang, hmms, text: str, rng: np.random.Generator) -> np.ndarray:  # noqa: ANN001
    """Synthetic DNN-like log posteriors ``(T, C)`` of ``text`` through the lang's ``hmms``."""
    from asrkd.decode.synthetic import peaky_log_posteriors, state_path

    units: list[int] = []
    for w in lang.transcript_units(text):
        units += w
        if rng.random() < 0.3:
            units.append(lang.silence_unit)
    if units and units[-1] == lang.silence_unit:
        units.pop()
    path = state_path(units, hmms, rng, MEAN_FRAMES_PER_STATE, lang.silence_unit, silence_frames=30)
    return peaky_log_posteriors(path, lang.num_classes, rng, confusion=CONFUSION, run_frames=RUN_FRAMES)


def lj_split(data: Path) -> tuple[list[str], list[str]]:
    """Normalised LJ Speech subset transcripts: (first 90% "train", last 10% "test")."""
    from asrkd.text import normalize_text

    meta = Path(data) / "ljspeech" / "LJSpeech-1.1" / "metadata.csv"
    if not meta.is_file():
        raise BenchSkipped(f"no LJ Speech metadata at {meta}")
    texts = [normalize_text(line.split("|")[2]) for line in meta.read_text(encoding="utf-8").splitlines()]
    n_test = max(1, len(texts) // 10)
    return texts[:-n_test], texts[-n_test:]


def run(args: argparse.Namespace) -> dict[str, float]:
    train, test = lj_split(args.data)
    from asrkd.decode.build import build_decoder
    from asrkd.decode.decoder import DecodeConfig
    from asrkd.lang.inventory import LangConfig, make_lang
    from asrkd.evaluation.scoring import score_texts

    logging.getLogger("asrkd").setLevel(logging.WARNING)
    cfg = DecodeConfig()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="asrkd-bench-decode-") as tmp:
        lang = make_lang(train, Path(tmp) / "lang", LangConfig())
        dec = build_decoder(lang, train, cfg)
        refs = {f"u{i:03d}": t for i, t in enumerate(test)}
        logliks, greedy = {}, {}
        for u, t in refs.items():
            post = utterance_posteriors(lang, dec.hmms, t, rng)
            logliks[u] = dec.loglik(post)
            greedy[u] = dec.greedy(post).text
    frames = sum(ll.shape[0] for ll in logliks.values())
    audio_s = frames * 0.01
    dec.decode_loglik(next(iter(logliks.values())))  # warm-up: numba compile or cache load
    walls = []
    hyps: dict[str, str] = {}
    max_tokens = 0
    for i in range(max(1, min(args.runs, 3))):
        t0 = time.perf_counter()
        out = {u: dec.decode_loglik(ll) for u, ll in logliks.items()}
        walls.append(time.perf_counter() - t0)
        hyps = {u: h.text for u, h in out.items()}
        max_tokens = max(h.result.max_tokens for h in out.values())
        say(f"[bench] decode run {i + 1}: {walls[-1]:.2f} s for {audio_s:.0f} s of audio "
            f"(RTF {walls[-1] / audio_s:.4f})")
    wer = score_texts(refs, hyps).wer
    gwer = score_texts(refs, greedy).wer
    say(f"[bench] decode: {len(lang.units)} units, {lang.num_classes} classes, LM {dec.lm.num_states} "
        f"states; WER {wer:.2f}% (greedy {gwer:.2f}%), beam {cfg.beam}, max_active {cfg.max_active}")
    return {
        "unit_lm_decode_rtf": round(statistics.median(walls) / audio_s, 5),
        "unit_lm_decode_wer": round(wer, 2),
        "unit_lm_decode_greedy_wer": round(gwer, 2),
        "unit_lm_decode_beam": cfg.beam,
        "unit_lm_decode_max_active": float(cfg.max_active),
        "unit_lm_decode_max_tokens": float(max_tokens),
        "unit_lm_decode_audio_seconds": round(audio_s, 1),
    }
