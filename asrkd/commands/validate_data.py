"""``asrkd validate-data DIR``: list every problem of a data directory; exit 1 if there is any."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asrkd.data.validate import validate_data_dir

NAME = "validate-data"
HELP = "check a data directory (ids, tables, transcripts, audio, durations); exit 1 on problems"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", type=Path, metavar="DIR", help="data directory (wav.scp text utt2spk ...)")
    p.add_argument("--no-audio", action="store_true", help="skip decoding the audio files (tables only)")
    p.add_argument("--max-problems", type=int, default=200, help="print at most this many problems")


def run(args: argparse.Namespace) -> int:
    report = validate_data_dir(args.data_dir, check_audio=not args.no_audio)
    for problem in report.problems[: args.max_problems]:
        print(problem)
    if report.problems:
        more = len(report.problems) - args.max_problems
        if more > 0:
            print(f"... and {more} more problems")
        print(f"{args.data_dir}: {len(report.problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{args.data_dir}: OK: {report.summary()}")
    return 0
