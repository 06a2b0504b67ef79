#!/usr/bin/env python3
"""Prepare any corpus given as a folder of audio files plus a transcript file:
``python data_prep/generic.py AUDIO_DIR OUT_DIR --text transcripts.txt [--utt2spk utt2spk]``.

- ``AUDIO_DIR``: audio files (``.wav``, ``.flac``, ``.sph``, any case, searched recursively);
  a file's id is its name without extension (ids must be unique).
- ``--text``: lines ``<id> <transcript>``, UTF-8; every id needs an audio file (audio files
  without a transcript are skipped and counted).
- ``--utt2spk``: optional lines ``<id> <speaker>``; without it all files are one speaker
  (``--speaker``).

Split: with 3 or more speakers, dev and test are speaker-disjoint from each other and from
train: whole speakers, in a seeded random order, until each holds ``--dev-fraction`` /
``--test-fraction`` of the utterances (at least one speaker each). With fewer speakers, the
split is by utterance (exact counts ``round(f * N)``, seeded). Utterance ids are
``<speaker>-<id>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter

from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from common import Utt, base_parser, main, split_keys, split_speakers, transcript, utt_id

log = logging.getLogger("asrkd.data_prep")
AUDIO_SUFFIXES = (".wav", ".flac", ".sph")


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    audio = {}
    for f in sorted(args.corpus_dir.rglob("*")):
        if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file():
            if f.stem in audio:
                raise AsrkdError(f"two audio files with id {f.stem!r}: {audio[f.stem]} and {f}")
            audio[f.stem] = f
    texts = read_table(args.text)
    spk_of = read_table(args.utt2spk) if args.utt2spk else {i: args.speaker for i in texts}
    utts = []
    for i, raw in texts.items():
        if i not in audio:
            raise AsrkdError(f"{args.text}: id {i!r} has no audio file in {args.corpus_dir}")
        if i not in spk_of:
            raise AsrkdError(f"{args.utt2spk}: id {i!r} has no speaker")
        utts.append(Utt(utt_id(spk_of[i], i), spk_of[i], audio[i], transcript(raw, f"{args.text}: {i}")))
    if len(audio) > len(utts):
        log.warning("%d audio files have no transcript and are skipped", len(audio) - len(utts))
    counts = Counter(u.spk for u in utts)
    if len(counts) >= 3:
        by_spk = split_speakers(counts, args.dev_fraction, args.test_fraction, args.seed)
        split = {u.utt: by_spk[u.spk] for u in utts}
    else:
        if len(counts) == 2:
            log.warning("only 2 speakers: dev/test are split by utterance, not by speaker")
        split = split_keys((u.utt for u in utts), args.dev_fraction, args.test_fraction, args.seed)
    return {name: [u for u in utts if split[u.utt] == name] for name in ("train", "dev", "test")}


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--text", required=True, help="file of '<id> <transcript>' lines")
    p.add_argument("--utt2spk", default=None, help="file of '<id> <speaker>' lines (optional)")
    p.add_argument("--speaker", default="spk", help="the speaker id when there is no --utt2spk")
    p.add_argument("--dev-fraction", type=float, default=0.1, help="share of utterances for dev")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of utterances for test")
    return p


if __name__ == "__main__":
    sys.exit(main(build_parser(), prepare))
