#!/usr/bin/env python3
"""Prepare the Free Spoken Digit Dataset: ``python data_prep/fsdd.py recordings/ OUT_DIR``.

Layout: ``recordings/{digit}_{speaker}_{take}.wav``, 8 kHz, one spoken digit per file; the
transcript is the digit as a word (ZERO .. NINE). Split by take, the corpus's own convention
extended with a dev set: takes 0-4 test, 5-9 dev, 10 and up train. Every speaker and digit is
in all three sets (the corpus defines no held-out speakers).
"""

from __future__ import annotations

import argparse
import re
import sys

from common import Utt, base_parser, main, transcript, utt_id

DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)$")
TEST_TAKES = range(0, 5)
DEV_TAKES = range(5, 10)


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    splits: dict[str, list[Utt]] = {"train": [], "dev": [], "test": []}
    for f in sorted(args.corpus_dir.glob("*.wav")):
        m = _NAME.match(f.stem)
        if not m:
            continue
        digit, spk, take = int(m.group(1)), m.group(2), int(m.group(3))
        split = "test" if take in TEST_TAKES else "dev" if take in DEV_TAKES else "train"
        splits[split].append(Utt(utt_id(spk, f.stem), spk, f, transcript(DIGITS[digit], str(f))))
    return splits


if __name__ == "__main__":
    sys.exit(main(base_parser(__doc__.splitlines()[0]), prepare))
