#!/usr/bin/env python3
"""Prepare Kaldi's yes/no corpus: ``python data_prep/yesno.py waves_yesno/ OUT_DIR``.

Layout: ``waves_yesno/<b1>_<b2>_..._<b8>.wav``, 8 kHz, one male speaker; the file name is the
transcript, ``0`` = NO and ``1`` = YES. Split (as Kaldi's recipe): the sorted file list is cut
in halves, the first half for training and the second for test; ``--num-dev`` files of the
training half (a seeded choice) are held out as dev. One speaker, so no speaker split.
"""

from __future__ import annotations

import argparse
import sys

from common import Utt, base_parser, main, pick, transcript, utt_id

SPEAKER = "yesno"
WORDS = {"0": "NO", "1": "YES"}


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    files = sorted(args.corpus_dir.glob("*.wav"))
    utts = []
    for f in files:
        labels = f.stem.split("_")
        if not all(b in WORDS for b in labels):
            continue  # not a yes/no recording (the corpus ships a README next to the waves)
        utts.append(Utt(utt_id(SPEAKER, f.stem), SPEAKER, f, transcript(" ".join(WORDS[b] for b in labels), str(f))))
    half = len(utts) // 2
    train, test = utts[:half], utts[half:]
    dev_ids = pick((u.utt for u in train), args.num_dev, args.seed)
    return {
        "train": [u for u in train if u.utt not in dev_ids],
        "dev": [u for u in train if u.utt in dev_ids],
        "test": test,
    }


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--num-dev", type=int, default=4, help="training files held out as dev")
    return p


if __name__ == "__main__":
    sys.exit(main(build_parser(), prepare))
