"""``asrkd mkgraph``: the word decoding graph HCLG of a class inventory (data/lang, or the tied
states of data/lang_tri) and a word LM."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_force_arg

NAME = "mkgraph"
HELP = "build the word decoding graph HCLG (tied-state HMMs, context, lexicon, word LM) into a graph dir"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("lang_dir", type=Path,
                   help="class inventory: data/lang (one pdf per unit state) or the tied-state data/lang_tri "
                        "(asrkd align with triphones: its decision tree maps context to pdfs)")
    p.add_argument("out_dir", type=Path, help="graph dir, e.g. data/lang/graph_<lm>")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arpa", type=Path, help="word n-gram LM in ARPA format (asrkd train-lm, KenLM, ...)")
    src.add_argument("--grammar-from", type=Path, metavar="TEXT",
                     help="a Kaldi text file (<utt> <words>): a grammar of any sequence of its words, "
                          "each equally likely (yes/no, digits); its ARPA is written into the graph dir")
    p.add_argument("--min-state-frames", type=int, default=1,
                   help="minimum frames per HMM state (a word of S states lasts >= S x this; 1: the lang's topology)")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.data.datadir import read_table
    from asrkd.decode.arpa import write_grammar_arpa
    from asrkd.decode.hclg import build_hclg
    from asrkd.lang.tied import load_inventory

    inv = load_inventory(args.lang_dir)
    lang = inv.lang
    arpa = args.arpa
    if args.grammar_from is not None:
        words = sorted({w for t in read_table(args.grammar_from, allow_empty_value=True).values() for w in t.split()})
        args.out_dir.mkdir(parents=True, exist_ok=True)
        arpa = args.out_dir / "grammar.arpa"
        write_grammar_arpa(words, arpa)
    build_hclg(lang, arpa, args.out_dir, tree=inv.tree, force=args.force, min_state_frames=args.min_state_frames)
    return 0
