"""Command line: ``python -m data_prep.synth {make,lm-text,energy} ...`` (run from the repo root)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asrkd.errors import AsrkdError
from asrkd.logs import add_log_file, setup_logging

from .corpus import PRESETS, SynthOptions, generate
from .energy import pause_word_energy
from .lm_text import write_lm_text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_prep.synth", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="generate the corpus (resumes a killed run)")
    m.add_argument("--out", required=True, type=Path, help="output directory")
    m.add_argument("--preset", default="default", choices=sorted(PRESETS))
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--nj", type=int, default=2, help="parallel workers")
    m.add_argument("--no-augment", action="store_true", help="no gain/noise for train and dev")
    m.add_argument("--augment-test", action="store_true", help="gain/noise for test too")
    m.add_argument("--text-file", default="", help="UTF-8 text to take sentences from instead of the KJV")
    m.add_argument("--force", action="store_true", help="redo everything")
    t = sub.add_parser("lm-text", help="write CORPUS/lm_text.txt: the source text without the corpus's sentences")
    t.add_argument("--corpus", required=True, type=Path, help="a corpus made by `make` (its --out)")
    e = sub.add_parser("energy", help="pause-vs-word power of a split (timing sanity check)")
    e.add_argument("split_dir", type=Path)
    args = p.parse_args(argv)
    setup_logging()
    try:
        if args.cmd == "make":
            args.out.mkdir(parents=True, exist_ok=True)
            add_log_file(args.out / "synth.log")
            opts = SynthOptions(
                preset=args.preset, seed=args.seed, augment=not args.no_augment,
                augment_test=args.augment_test, text_file=args.text_file,
            )
            summary = generate(args.out, opts, nj=args.nj, force=args.force)
            print(json.dumps(summary, indent=2))
        elif args.cmd == "lm-text":
            print(json.dumps(write_lm_text(args.corpus), indent=2))
        else:
            print(json.dumps(pause_word_energy(args.split_dir), indent=2))
    except AsrkdError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
