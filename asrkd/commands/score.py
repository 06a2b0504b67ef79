"""``asrkd score``: WER/CER of a hypothesis text table against a reference text table."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

NAME = "score"
HELP = "WER/CER with S/D/I counts, per-utterance alignments and frequent confusions (Kaldi-style)"

log = logging.getLogger("asrkd.commands.score")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ref", required=True, type=Path, help="reference table <utt> <text> (e.g. data/test/text)")
    p.add_argument("--hyp", required=True, type=Path, help="hypothesis table <utt> <text>")
    p.add_argument("--out", type=Path, default=None,
                   help="write wer.json, wer.txt, per_utt, errors, hyp, ref here")
    p.add_argument("--normalize", action="store_true",
                   help="apply asrkd's transcript normalisation to both sides first")


def run(args: argparse.Namespace) -> int:
    from asrkd.data.datadir import read_table
    from asrkd.evaluation.scoring import format_summary, score_texts, write_scoring
    from asrkd.text import normalize_text

    refs = read_table(args.ref, allow_empty_value=True)
    hyps = read_table(args.hyp, allow_empty_value=True)
    if args.normalize:
        refs = {u: normalize_text(t) for u, t in refs.items()}
        hyps = {u: normalize_text(t) for u, t in hyps.items()}
    res = score_texts(refs, hyps)
    if args.out is not None:
        write_scoring(args.out, res)
        log.info("scoring written to %s", args.out)
    sys.stdout.write(format_summary(res))
    return 0
