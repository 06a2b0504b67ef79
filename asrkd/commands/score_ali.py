"""``asrkd score-ali``: word (and phone) boundary accuracy of a label set against reference CTMs."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "score-ali"
HELP = "boundary accuracy (percent within 20/50 ms, mean abs. error) of alignments against reference CTMs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="label set directory DATA/labels/NAME (with word.ctm, unit.ctm)")
    p.add_argument("--ref-word", type=Path, required=True, help="reference word CTM")
    p.add_argument("--ref-phone", type=Path, default=None, help="reference phone CTM (scored against unit.ctm)")
    p.add_argument("--phone-map", type=Path, default=None,
                   help="table '<ref phone> <unit>' mapping reference phones onto the lang's units")
    p.add_argument("--out", type=Path, default=None, help="JSON result (default LABELS/score_ali.json)")


def run(args: argparse.Namespace) -> int:
    import logging

    from asrkd.align.ctm import read_ctm
    from asrkd.align.score_ali import score_boundaries
    from asrkd.data.datadir import read_table
    from asrkd.errors import AsrkdError
    from asrkd.fileio import atomic_write_json

    log = logging.getLogger("asrkd.score_ali")
    if not (args.labels / "word.ctm").is_file():
        raise AsrkdError(f"{args.labels}/word.ctm not found (label sets from `asrkd align` have it)")
    result = {"labels": str(args.labels)}
    w = score_boundaries(read_ctm(args.labels / "word.ctm"), read_ctm(args.ref_word))
    result["word"] = w.to_dict()
    if args.ref_phone is not None:
        mapping = None
        if args.phone_map is not None:
            mapping = {k.lower(): v.lower() for k, v in read_table(args.phone_map).items()}
        p = score_boundaries(read_ctm(args.labels / "unit.ctm"), read_ctm(args.ref_phone), mapping)
        result["phone"] = p.to_dict()
    for kind in ("word", "phone"):
        if kind in result:
            r = result[kind]
            log.info("%s %s boundaries: %d in %d utts (%d mismatched, %d missing): within 20 ms %.1f%%, "
                     "within 50 ms %.1f%%, MAE %.1f ms", args.labels, kind, r["boundaries"], r["utterances"],
                     r["mismatched"], r["missing"], r["within_20ms"], r["within_50ms"], r["mae_ms"])
    atomic_write_json(args.out or args.labels / "score_ali.json", result)
    return 0
