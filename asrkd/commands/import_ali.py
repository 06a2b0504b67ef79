"""``asrkd import-ali``: frame labels from Kaldi alignments or TIMIT .PHN files."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_force_arg

NAME = "import-ali"
HELP = "import frame labels (Kaldi ali-to-pdf text/ark, TIMIT .PHN) into DATA/labels/NAME"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", type=Path, help="data directory (utt2num_frames fixes the frame counts)")
    p.add_argument("source", type=Path, nargs="?", default=None,
                   help="kaldi-text / kaldi-ark file; for timit-phn a table '<utt> <file.PHN>' "
                        "(default: each wav.scp path with the extension .PHN)")
    p.add_argument("--format", required=True, choices=["kaldi-text", "kaldi-ark", "timit-phn"])
    p.add_argument("--name", required=True, help="label set name: DATA/labels/NAME")
    p.add_argument("--lang", type=Path, default=None, help="data/lang the ids refer to (required for timit-phn)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="size of the label inventory when there is no --lang (Kaldi pdf count)")
    p.add_argument("--phone-map", type=Path, default=None, help="timit-phn: table '<timit phone> <unit>'")
    p.add_argument("--mismatch", choices=["error", "trim"], default="error",
                   help="frame-count mismatches: error, or trim/pad up to 2 frames (logged)")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    from asrkd.align.import_ali import import_labels

    import_labels(args.data_dir, args.name, args.format, args.source, args.lang, args.num_classes,
                  args.phone_map, args.mismatch, force=args.force)
    return 0
