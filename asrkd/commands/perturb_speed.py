"""``asrkd perturb-speed SRC DST [--factors 0.9 1.0 1.1]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_force_arg

NAME = "perturb-speed"
HELP = "3-way speed perturbation of a data directory (audio through torchaudio, written as FLAC; Kaldi's sp<f>- ids)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, metavar="SRC", help="source data directory")
    p.add_argument("dst", type=Path, metavar="DST", help="new data directory (tables + wav/ with the perturbed audio)")
    p.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.0, 1.1], metavar="F",
                   help="speed factors (1.0 keeps the source audio; default 0.9 1.0 1.1)")
    p.add_argument("--sample-rate", type=int, default=16000, help="rate of the written audio (the internal rate)")
    p.add_argument("--nj", type=int, default=1, help="parallel processes")
    p.add_argument("--allow-pipes", action="store_true", help="accept command pipes in SRC's wav.scp (runs them)")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.data.speed import perturb_speed

    perturb_speed(args.src, args.dst, tuple(args.factors), args.sample_rate, args.nj, args.allow_pipes, args.force)
    return 0
