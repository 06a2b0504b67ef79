"""``asrkd verify-targets``: checksums of a soft-target cache and its fit to data and labels."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asrkd.errors import AsrkdError

NAME = "verify-targets"
HELP = "check a soft-target cache: every byte (checksums), frame counts, features, label inventory"

log = logging.getLogger("asrkd.commands.verify_targets")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cache", type=Path, metavar="CACHE_DIR")
    p.add_argument("--feats", type=Path, default=None, metavar="DATA_DIR",
                   help="data dir whose utt2num_frames and feats/ fingerprint the cache must match")
    p.add_argument("--lang", type=Path, default=None, help="data/lang whose label inventory the cache must match")
    p.add_argument("--labels", type=Path, default=None, help="a label store the cache must match")


def run(args: argparse.Namespace) -> int:
    from asrkd.softtargets.verify import verify_cache

    problems = verify_cache(args.cache, args.feats, args.lang, args.labels)
    if problems:
        raise AsrkdError(f"{args.cache}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    log.info("%s: intact and consistent", args.cache)
    return 0
