#!/usr/bin/env python3
"""Generate tiny LibriSpeech- and TIMIT-shaped corpora with espeak-ng, laid out exactly like
the originals, for tests and recipe smoke runs:

    python data_prep/tiny_corpus.py librispeech OUT_DIR   # OUT_DIR/<subset>/<reader>/<chapter>/...
    python data_prep/tiny_corpus.py timit OUT_DIR         # OUT_DIR/TRAIN|TEST/DR*/<spk>/*.WAV ...

LibriSpeech: FLAC 16 kHz, ``<reader>-<chapter>.trans.txt`` with upper-case transcripts;
subsets train-clean-100 (2 readers), dev-clean and test-clean (1 reader each).
TIMIT: NIST SPHERE 16 kHz 16-bit ``.WAV`` with ``.TXT`` (``0 <num samples> <sentence>``),
``.WRD`` and ``.PHN`` (``<first> <last sample> <label>``); TRAIN has 2 speakers, TEST has a
standard dev speaker (FAKS0), a core-test speaker (MDAB0) and one speaker in neither list;
each speaker reads SA1, SA2, one SI and one SX sentence. Word and phone times are plausible,
not exact: the speech region (amplitude above 2% of the peak) is shared among the words in
proportion to their phone counts and evenly among each word's phones, with ``h#`` silence
before and after; phones are TIMIT symbols from a small hand-made lexicon.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from asrkd.data.audio import read_audio_file, resample

RATE = 16000
PAUSE_S = 0.15  # silence before and after each sentence, seconds
VOICES = ("en-us", "en-us+f3", "en-us+m3", "en-us+f2", "en-us+m5")

SA1 = "She had your dark suit in greasy wash water all year."
SA2 = "Don't ask me to carry an oily rag like that."
OTHER_SENTENCES = (
    "She had an oily rag.",
    "Don't carry your dark suit.",
    "Wash that rag in water all year.",
    "Ask me like that.",
    "Your greasy suit had oily water in it.",
    "Carry me to that dark water.",
)
# TIMIT phone symbols (61-phone set, closures included) for the words above.
LEXICON = {
    "she": "sh iy", "had": "hh ae dcl d", "your": "y ao r", "dark": "dcl d aa r kcl k",
    "suit": "s uw tcl t", "in": "ih n", "greasy": "gcl g r iy s iy", "wash": "w ao sh",
    "water": "w ao dx axr", "all": "ao l", "year": "y ih axr", "don't": "dcl d ow n",
    "ask": "ae s kcl k", "me": "m iy", "to": "tcl t ix", "carry": "kcl k eh r iy",
    "an": "ix n", "oily": "oy l iy", "rag": "r ae gcl g", "like": "l ay kcl k",
    "that": "dh ae tcl t", "it": "ih tcl t",
}


def synthesize(text: str, voice: str) -> np.ndarray:
    """Speak ``text`` with espeak-ng, with a short pause before and after.

    Returns ``samples: (N,)`` float32 at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        samples, rate = read_audio_file(str(wav))
    speech = resample(samples, rate, RATE)
    # Lead-in and tail of faint noise, like the pauses around real read sentences.
    pad = np.random.default_rng(len(text)).normal(0.0, 1e-4, int(PAUSE_S * RATE))
    return np.concatenate([pad, speech, pad[::-1]]).astype(np.float32)


def _words(sentence: str) -> list[str]:
    return [w.strip(".,?!").lower() for w in sentence.split()]


def timings(samples: np.ndarray, sentence: str) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """Plausible ``(words, phones)`` as ``(first, last sample, label)`` lists (see module doc)."""
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
    start, end = int(loud[0]), int(loud[-1]) + 1
    prons = [(w, LEXICON[w].split()) for w in _words(sentence)]
    per_phone = (end - start) / sum(len(p) for _, p in prons)
    words, phones = [], [(0, start, "h#")]
    pos = float(start)
    for word, pron in prons:
        w0 = int(round(pos))
        for ph in pron:
            phones.append((int(round(pos)), int(round(pos + per_phone)), ph))
            pos += per_phone
        words.append((w0, int(round(pos)), word))
    phones.append((int(round(pos)), len(samples), "h#"))
    return words, phones


def make_librispeech(out_dir: Path, utts_per_chapter: int = 2) -> Path:
    """Write the tiny LibriSpeech under ``out_dir`` (the folder holding the subsets)."""
    layout = {  # subset -> [(reader, chapter)]
        "train-clean-100": [("19", "198"), ("19", "227"), ("26", "495")],
        "dev-clean": [("84", "121123")],
        "test-clean": [("1089", "134686")],
    }
    n = 0
    for subset, chapters in layout.items():
        for reader, chapter in chapters:
            d = out_dir / subset / reader / chapter
            d.mkdir(parents=True, exist_ok=True)
            lines = []
            for i in range(utts_per_chapter):
                sentence = OTHER_SENTENCES[n % len(OTHER_SENTENCES)]
                n += 1
                utt = f"{reader}-{chapter}-{i:04d}"
                samples = synthesize(sentence, VOICES[int(reader) % len(VOICES)])
                sf.write(d / f"{utt}.flac", samples, RATE, format="FLAC", subtype="PCM_16")
                lines.append(f"{utt} {' '.join(_words(sentence)).upper()}\n")
            (d / f"{reader}-{chapter}.trans.txt").write_text("".join(lines), encoding="utf-8")
    return out_dir


def make_timit(out_dir: Path) -> Path:
    """Write the tiny TIMIT under ``out_dir`` (the folder holding TRAIN and TEST)."""
    speakers = [  # (part, dialect region, speaker, SI number, SX number)
        ("TRAIN", "DR1", "FCJF0", 1027, 127), ("TRAIN", "DR2", "MKLW0", 1571, 221),
        ("TEST", "DR1", "FAKS0", 943, 43), ("TEST", "DR1", "MDAB0", 1039, 139),
        ("TEST", "DR2", "MXYZ9", 1101, 301),
    ]
    n = 0
    for k, (part, region, spk, si, sx) in enumerate(speakers):
        d = out_dir / part / region / spk
        d.mkdir(parents=True, exist_ok=True)
        sentences = {"SA1": SA1, "SA2": SA2}
        for name in (f"SI{si}", f"SX{sx}"):
            sentences[name] = OTHER_SENTENCES[n % len(OTHER_SENTENCES)]
            n += 1
        for name, sentence in sentences.items():
            samples = synthesize(sentence, VOICES[k % len(VOICES)])
            sf.write(d / f"{name}.WAV", samples, RATE, format="NIST", subtype="PCM_16")
            words, phones = timings(samples, sentence)
            (d / f"{name}.TXT").write_text(f"0 {len(samples)} {sentence}\n", encoding="utf-8")
            (d / f"{name}.WRD").write_text("".join(f"{a} {b} {w}\n" for a, b, w in words), encoding="utf-8")
            (d / f"{name}.PHN").write_text("".join(f"{a} {b} {p}\n" for a, b, p in phones), encoding="utf-8")
    return out_dir


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("corpus", choices=("librispeech", "timit"))
    p.add_argument("out_dir", type=Path)
    args = p.parse_args()
    (make_librispeech if args.corpus == "librispeech" else make_timit)(args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
