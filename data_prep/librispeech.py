#!/usr/bin/env python3
"""Prepare LibriSpeech: ``python data_prep/librispeech.py LibriSpeech/ OUT_DIR
--train train-clean-100 --dev dev-clean --test test-clean``.

Layout (as distributed): ``<subset>/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac`` and one
``<reader>-<chapter>.trans.txt`` per chapter with lines ``<utt-id> <TRANSCRIPT>``. Any subset
names; a comma-separated list merges subsets into one set (``--train
train-clean-100,train-clean-360``). The corpus's own subsets are the split (its dev and test
readers are disjoint from the training readers). The speaker is the reader; utterance ids are
LibriSpeech's own (already reader-prefixed). A transcript line without its flac, or a flac
without a transcript line, is an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asrkd.errors import AsrkdError
from common import Utt, base_parser, main, transcript, utt_id


def read_subset(subset_dir: Path) -> list[Utt]:
    """All utterances of one LibriSpeech subset directory."""
    if not subset_dir.is_dir():
        raise AsrkdError(f"subset directory not found: {subset_dir}")
    utts = []
    for trans in sorted(subset_dir.glob("*/*/*.trans.txt")):
        reader = trans.parent.parent.name
        flacs = {f.stem: f for f in trans.parent.glob("*.flac")}
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            name, _, raw = line.partition(" ")
            if name not in flacs:
                raise AsrkdError(f"{trans}:{lineno}: no audio file {name}.flac")
            utts.append(Utt(utt_id(reader, name), reader, flacs.pop(name), transcript(raw, f"{trans}:{lineno}")))
        if flacs:
            raise AsrkdError(f"{trans}: no transcript for {sorted(flacs)[0]}.flac ({len(flacs)} files)")
    if not utts:
        raise AsrkdError(f"no <reader>/<chapter>/*.trans.txt found under {subset_dir}")
    return utts


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    out = {}
    for split in ("train", "dev", "test"):
        names = getattr(args, split)
        if names:
            out[split] = [u for name in names.split(",") for u in read_subset(args.corpus_dir / name)]
    if not out:
        raise AsrkdError("name at least one subset: --train, --dev or --test")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--train", default="", help="subset(s) for train, comma-separated")
    p.add_argument("--dev", default="", help="subset(s) for dev, comma-separated")
    p.add_argument("--test", default="", help="subset(s) for test, comma-separated")
    return p


if __name__ == "__main__":
    sys.exit(main(build_parser(), prepare))
