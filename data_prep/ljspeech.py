#!/usr/bin/env python3
"""Prepare LJ Speech 1.1: ``python data_prep/ljspeech.py LJSpeech-1.1/ OUT_DIR``.

Layout: ``metadata.csv`` lines ``ID|raw text|normalized text`` and ``wavs/<ID>.wav`` (22.05 kHz,
one female reader). Transcripts come from the normalized column (numbers and abbreviations
spelled out), then the project normalisation. One speaker and no official split: dev and test
are chosen by utterance id, deterministically for a seed (``--dev-fraction``/``--test-fraction``
of the clips each, exact counts ``round(f * N)``). Metadata lines whose wav is absent are an
error (the corpus is incomplete), unless ``--allow-missing``.

``--lm-metadata FILE`` (e.g. ``lm/metadata_other.csv``, the LJ Speech lines whose clips are not
in the subset, same format) also writes ``OUT_DIR/lm_text.txt``: its normalized column through
the same normalisation, one sentence per line, for the word LM. A clip id of FILE that is also
in ``metadata.csv`` is an error, and a sentence equal to a dev or test transcript is left out.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkd.errors import AsrkdError
from asrkd.fileio import write_text_if_changed
from asrkd.text import normalize_text
from common import Utt, base_parser, main, split_keys, transcript, utt_id

log = logging.getLogger("asrkd.data_prep")
SPEAKER = "LJ"


def read_metadata(meta: Path) -> list[tuple[str, str, str]]:
    """``(clip id, normalized column, file:line)`` of each line of an LJ Speech metadata file."""
    if not meta.is_file():
        raise AsrkdError(f"missing {meta}")
    out = []
    for lineno, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 3:
            raise AsrkdError(f"{meta}:{lineno}: expected 'ID|raw|normalized', got {line!r}")
        out.append((fields[0], fields[2], f"{meta}:{lineno}"))
    return out


def write_lm_text(lm_meta: Path, clips: set[str], held_out: set[str], out: Path) -> None:
    """``out``: the normalised sentences of ``lm_meta`` (see module docstring)."""
    lines = read_metadata(lm_meta)
    shared = sorted(clips & {clip for clip, _, _ in lines})
    if shared:
        raise AsrkdError(f"{lm_meta} has {len(shared)} clip(s) of metadata.csv (e.g. {shared[0]}): "
                         "the LM text must not contain the corpus")
    sents = [t for t in (normalize_text(text) for _, text, _ in lines) if t]
    kept = [t for t in sents if t not in held_out]
    if len(kept) < len(sents):
        log.warning("%s: %d sentence(s) equal to a dev/test transcript left out", lm_meta, len(sents) - len(kept))
    write_text_if_changed(out, "".join(t + "\n" for t in kept))
    log.info("LM text: %d sentences, %d words -> %s", len(kept), sum(len(t.split()) for t in kept), out)


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    meta = args.corpus_dir / "metadata.csv"
    utts, missing = [], []
    lines = read_metadata(meta)
    for clip, text, where in lines:
        wav = args.corpus_dir / "wavs" / f"{clip}.wav"
        if not wav.is_file():
            missing.append(clip)
            continue
        utts.append(Utt(utt_id(SPEAKER, clip), SPEAKER, wav, transcript(text, where)))
    if missing:
        msg = f"{len(missing)} clips of metadata.csv have no wav file, first {missing[0]!r}"
        if not args.allow_missing:
            raise AsrkdError(msg + " (--allow-missing to skip them)")
        log.warning("skipped: %s", msg)
    split = split_keys((u.utt for u in utts), args.dev_fraction, args.test_fraction, args.seed)
    if args.lm_metadata is not None:
        held_out = {u.text for u in utts if split[u.utt] != "train"}
        write_lm_text(args.lm_metadata, {clip for clip, _, _ in lines}, held_out, args.out_dir / "lm_text.txt")
    return {name: [u for u in utts if split[u.utt] == name] for name in ("train", "dev", "test")}


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--dev-fraction", type=float, default=0.1, help="share of clips for dev")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of clips for test")
    p.add_argument("--allow-missing", action="store_true", help="skip clips whose wav is absent")
    p.add_argument("--lm-metadata", type=Path, default=None,
                   help="also write OUT_DIR/lm_text.txt from this metadata file (e.g. lm/metadata_other.csv)")
    return p


if __name__ == "__main__":
    sys.exit(main(build_parser(), prepare))
