"""``asrkd compute-feats DATA_DIR``: log-mel filterbanks, utt2num_frames, utt2dur, CMVN stats."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrkd.commands._common import add_config_args, add_force_arg, config_from_args
from asrkd.features.compute import compute_feats
from asrkd.features.fbank import FeatureConfig

NAME = "compute-feats"
HELP = "compute Kaldi-compatible log-mel filterbank features into DATA_DIR/feats (+ utt2num_frames, cmvn.json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="Kaldi data directory (wav.scp text utt2spk ...)")
    add_config_args(p)
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes, one part each (default 1)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and list in DATA_DIR/feats/skipped) utterances with bad audio instead of failing")
    p.add_argument("--allow-pipes", action="store_true",
                   help="run command pipes found in wav.scp (refused by default: they execute code)")
    add_force_arg(p)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(FeatureConfig, args)
    s = compute_feats(args.data_dir, cfg, nj=args.nj, skip_bad=args.skip_bad,
                      allow_pipes=args.allow_pipes, force=args.force)
    state = "already complete" if s.reused else f"done in {s.seconds:.1f} s"
    print(f"{args.data_dir}: {s.num_utts} utterances, {s.num_frames} frames, {s.num_skipped} skipped ({state})")
    return 0
