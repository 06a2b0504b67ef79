"""``asrkd train-lm``: a word n-gram LM (modified Kneser-Ney, ARPA) from LM text + training transcripts."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_config_args, add_force_arg, config_from_args

NAME = "train-lm"
HELP = "word n-gram LM (modified Kneser-Ney, pruning) as OUT/lm.arpa; perplexity and OOV rate on dev and test"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory (lm.arpa, lm.json, .done), e.g. data/lm")
    p.add_argument("--text", type=Path, action="append", default=[],
                   help="LM text: plain UTF-8 (or .gz), one sentence per line (repeatable)")
    p.add_argument("--train-data", type=Path, action="append", default=[],
                   help="training data directory whose transcripts join the LM text (repeatable; never dev or test)")
    p.add_argument("--dev", type=Path, default=None, help="dev data directory: perplexity and OOV rate only")
    p.add_argument("--test", type=Path, default=None, help="test data directory: perplexity and OOV rate only")
    add_config_args(p)
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.lm.train import LMConfig, LMInputs, train_lm

    cfg = config_from_args(LMConfig, args)
    inputs = LMInputs(tuple(args.text), tuple(args.train_data), args.dev, args.test)
    result = train_lm(cfg, inputs, args.out, force=args.force)
    ngrams = " ".join(f"{k}-grams {m}" for k, m in enumerate(result["ngrams"], 1))
    print(f"{args.out / result['arpa']}: vocabulary {result['vocab_size']}, {ngrams}")
    for name in ("dev", "test"):
        if name in result:
            s = result[name]
            ppl = "n/a" if s["ppl"] is None else f"{s['ppl']:.2f}"
            oov = "n/a" if s["oov_rate"] is None else f"{100 * s['oov_rate']:.2f}%"
            print(f"{name}: perplexity {ppl} (OOVs excluded), OOV rate {oov} ({s['oovs']} of {s['words']} words)")
    return 0
