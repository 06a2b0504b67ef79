#!/usr/bin/env python3
"""Prepare LJ Speech 1.1: ``python data_prep/ljspeech.py LJSpeech-1.1/ OUT_DIR``.

Layout: ``metadata.csv`` lines ``ID|raw text|normalized text`` and ``wavs/<ID>.wav`` (22.05 kHz,
one female reader). Transcripts come from the normalized column (numbers and abbreviations
spelled out), then the project normalisation. One speaker and no official split: dev and test
are chosen by utterance id, deterministically for a seed (``--dev-fraction``/``--test-fraction``
of the clips each, exact counts ``round(f * N)``). Metadata lines whose wav is absent are an
error (the corpus is incomplete), unless ``--allow-missing``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from asrkd.errors import AsrkdError
from common import Utt, base_parser, main, split_keys, transcript, utt_id

log = logging.getLogger("asrkd.data_prep")
SPEAKER = "LJ"


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    meta = args.corpus_dir / "metadata.csv"
    if not meta.is_file():
        raise AsrkdError(f"missing {meta}")
    utts, missing = [], []
    for lineno, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 3:
            raise AsrkdError(f"{meta}:{lineno}: expected 'ID|raw|normalized', got {line!r}")
        wav = args.corpus_dir / "wavs" / f"{fields[0]}.wav"
        if not wav.is_file():
            missing.append(fields[0])
            continue
        utts.append(Utt(utt_id(SPEAKER, fields[0]), SPEAKER, wav, transcript(fields[2], f"{meta}:{lineno}")))
    if missing:
        msg = f"{len(missing)} clips of metadata.csv have no wav file, first {missing[0]!r}"
        if not args.allow_missing:
            raise AsrkdError(msg + " (--allow-missing to skip them)")
        log.warning("skipped: %s", msg)
    split = split_keys((u.utt for u in utts), args.dev_fraction, args.test_fraction, args.seed)
    return {name: [u for u in utts if split[u.utt] == name] for name in ("train", "dev", "test")}


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--dev-fraction", type=float, default=0.1, help="share of clips for dev")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of clips for test")
    p.add_argument("--allow-missing", action="store_true", help="skip clips whose wav is absent")
    return p


if __name__ == "__main__":
    sys.exit(main(build_parser(), prepare))
