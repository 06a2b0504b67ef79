"""``asrkd subset-data SRC DST (--first N | --fraction F | --speakers S,.. | --utt-list FILE | --num-speakers N)``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from asrkd.data import datatools
from asrkd.commands._common import add_force_arg
from asrkd.data.datadir import DataDir

NAME = "subset-data"
HELP = "write a subset of a data directory (by count, seeded fraction, speakers or an id list)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, metavar="SRC", help="source data directory")
    p.add_argument("dst", type=Path, metavar="DST", help="new data directory (tables only)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--first", type=int, metavar="N", help="the first N utterances (sorted ids)")
    how.add_argument("--fraction", type=float, metavar="F", help="round(F*N) utterances, seeded choice")
    how.add_argument("--speakers", metavar="S1,S2", help="all utterances of these speakers")
    how.add_argument("--num-speakers", type=int, metavar="N", help="all utterances of N speakers, seeded choice")
    how.add_argument("--utt-list", type=Path, metavar="FILE", help="utterances listed in FILE (first field)")
    p.add_argument("--seed", type=int, default=0, help="seed of --fraction/--num-speakers choices")
    add_force_arg(p)


def _selector(args: argparse.Namespace) -> Callable[[DataDir], list[str]]:
    if args.first is not None:
        return lambda d: datatools.select_first(d, args.first)
    if args.fraction is not None:
        return lambda d: datatools.select_fraction(d, args.fraction, args.seed)
    if args.speakers is not None:
        return lambda d: datatools.select_speakers(d, [s for s in args.speakers.split(",") if s])
    if args.num_speakers is not None:
        return lambda d: datatools.select_num_speakers(d, args.num_speakers, args.seed)
    return lambda d: datatools.select_utt_list(d, datatools.read_utt_list(args.utt_list))


def run(args: argparse.Namespace) -> int:
    datatools.subset_data(args.src, args.dst, _selector(args), force=args.force)
    return 0
