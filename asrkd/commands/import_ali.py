"""``asrkd import-ali``: frame labels from Kaldi alignments or TIMIT .PHN files."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    p.add_argument("--force", action="store_true", help="replace an existing label set")


def run(args: argparse.Namespace) -> int:
    from asrkd.align import import_ali as ia
    from asrkd.align.labels import labels_dir, write_labels
    from asrkd.data.datadir import read_num_frames, read_table
    from asrkd.errors import AsrkdError
    from asrkd.fileio import is_done, sha256_file
    from asrkd.framestore import FrameStore
    from asrkd.lang.inventory import load_lang

    out = labels_dir(args.data_dir, args.name)
    if is_done(out) and not args.force:
        raise AsrkdError(f"{out} exists; use --force to replace it")
    expected = read_num_frames(args.data_dir)
    lang = load_lang(args.lang) if args.lang else None
    if args.format == "timit-phn":
        if lang is None:
            raise AsrkdError("timit-phn needs --lang (phones map onto its units)")
        if args.source is not None:
            phn = read_table(args.source)
        else:
            if (args.data_dir / "segments").is_file():
                raise AsrkdError("timit-phn without a source table needs a data dir without segments")
            phn = {u: str(Path(p).with_suffix(".PHN" if Path(p).suffix.isupper() else ".phn"))
                   for u, p in read_table(args.data_dir / "wav.scp").items()}
        pmap = read_table(args.phone_map) if args.phone_map else {}
        source = ((u, ia.phn_to_classes(ia.read_phn(Path(p)), expected[u], lang, pmap))
                  for u, p in sorted(phn.items()) if u in expected)
        origin = f"timit-phn:{args.source or 'wav.scp'}"
    else:
        if args.source is None:
            raise AsrkdError(f"{args.format} needs a source file")
        source = ia.read_kaldi_text(args.source) if args.format == "kaldi-text" else ia.read_kaldi_ark(args.source)
        origin = f"{args.format}:{args.source}"
    labels, failed, _, _ = ia.fit_all(source, expected, args.mismatch)
    if lang is not None:
        num_classes, lang_fp = lang.num_classes, lang.fingerprint
    elif args.num_classes is not None:
        num_classes = args.num_classes
        lang_fp = f"external:{sha256_file(args.source)}"
    else:
        raise AsrkdError("give --lang or --num-classes (the size of the label inventory)")
    feats_fp = ""
    if (args.data_dir / "feats" / ".done").is_file():
        feats_fp = str(FrameStore(args.data_dir / "feats").attrs.get("fingerprint", ""))
    write_labels(out, sorted(labels.items()), failed, num_classes, lang_fp, feats_fp, origin, expected)
    return 0
