"""Synthetic 'speech' for the aligner tests, with known word segmentations.

Every HMM state of every grapheme gets its own mean pattern over 40 'filterbank' bins (``means``:
silence first, then 3 per letter), silence is low-energy noise; utterances are random words with
random durations and random pauses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asrkd.align.ctm import write_ctm
from asrkd.data.datadir import write_table
from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
from asrkd.framing import boundary_time
from asrkd.framestore import write_store

LETTERS = "ABCDE"
WORDS = ["AB", "CAD", "EBA", "DEC", "BE", "ACE"]


def make_ali_set(d: Path, n_utts: int, seed: int, means: np.ndarray, short: bool = False,
                 quiet: tuple[int, ...] = (), context_shift: float = 0.0) -> None:
    """Write a data dir with feats/, utt2num_frames, cmvn.json, text and a reference word CTM.

    Utterances numbered in ``quiet`` open with 40 frames of background 12 units (natural log)
    quieter than everyone else's, as a recording with another gain or digital silence does.
    ``context_shift > 0`` plants a right-context effect: a word's last letter sounds different
    (its states' means moved by that much, +/- alternating over the bins) before silence than
    before the next word."""
    rng = np.random.default_rng(seed)
    feats, text, ref = {}, {}, {}
    shift = context_shift * np.where(np.arange(40) % 2 == 0, 1.0, -1.0)
    for i in range(n_utts):
        utt = f"spk1-u{i:03d}"
        words = list(rng.choice(WORDS, rng.integers(2, 5)))
        frames, segs, t = [], [], 0
        # With a planted effect the pauses are drawn first (a word's end must know what follows).
        pauses = [w_i > 0 and rng.random() < 0.4 for w_i in range(len(words))] if context_shift else None

        def emit(mean: np.ndarray, n: int) -> None:
            frames.append(mean[None, :] + rng.normal(0, 1.0, (n, 40)))

        n = int(rng.integers(8, 20))
        emit(means[0], n)
        t += n
        if i in quiet:
            emit(means[0] - 12.0, 40)
            t += 40
        for w_i, w in enumerate(words):
            pause = pauses[w_i] if pauses is not None else (w_i > 0 and rng.random() < 0.4)
            if pause:
                n = int(rng.integers(5, 15))
                emit(means[0], n)
                t += n
            start = t
            before_sil = pauses is not None and (w_i + 1 == len(words) or pauses[w_i + 1])
            for c_i, ch in enumerate(w):
                for k in range(3):
                    n = int(rng.integers(2, 6))
                    moved = before_sil and c_i + 1 == len(w)
                    emit(means[1 + 3 * LETTERS.index(ch) + k] + (shift if moved else 0.0), n)
                    t += n
            segs.append((w, float(boundary_time(start)), float(boundary_time(t))))
        n = int(rng.integers(8, 20))
        emit(means[0], n)
        t += n
        x = np.concatenate(frames).astype(np.float32)
        if short and i == 0:
            x, words, segs = x[:5], ["ACE", "DEC"], []
        feats[utt], text[utt] = x, " ".join(words)
        if segs:
            ref[utt] = segs
    d.mkdir(parents=True)
    write_table(d / "text", text)
    write_table(d / "utt2spk", {u: "spk1" for u in text})
    write_table(d / "spk2utt", {"spk1": " ".join(sorted(text))})
    write_table(d / "wav.scp", {u: f"/nonexistent/{u}.wav" for u in text})
    write_table(d / "utt2num_frames", {u: str(len(x)) for u, x in feats.items()})
    write_store(d / "feats", sorted(feats.items()), np.float32, (40,), {"fingerprint": "synthetic-fbank"})
    acc = CmvnAccumulator(40)
    for u, x in feats.items():
        acc.add("spk1", x)
    write_cmvn(d, acc.to_json())
    write_ctm(d / "ref_word.ctm", ref)
