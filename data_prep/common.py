"""What every data_prep script shares: the utterance record, id and transcript rules,
deterministic splits, writing the split directories, and the command-line frame.

Scripts are run as ``python data_prep/<corpus>.py CORPUS_DIR OUT_DIR``; each builds a list of
:class:`Utt` per split and hands it to :func:`write_splits` (through :func:`main`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from asrkd.data.datadir import DataDir, read_data_dir
from asrkd.data.datatools import rank_by_hash, write_new_data_dir
from asrkd.errors import AsrkdError
from asrkd.logs import setup_logging
from asrkd.text import normalize_text

log = logging.getLogger("asrkd.data_prep")

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utt:
    """One utterance: speaker-prefixed id, speaker, absolute audio path, normalised transcript,
    and any extra per-utterance table entries (e.g. ``{"utt2phn": "/abs/path.PHN"}``)."""

    utt: str
    spk: str
    audio: Path
    text: str
    extra: dict[str, str] = field(default_factory=dict)


def utt_id(spk: str, name: str) -> str:
    """Speaker-prefixed utterance id ``<spk>-<name>``; ``name`` is kept if already prefixed.

    The prefix makes sorting by utterance also group speakers (Kaldi's rule)."""
    return name if name.startswith(f"{spk}-") else f"{spk}-{name}"


def transcript(raw: str, where: str) -> str:
    """Normalise ``raw`` with the one project normalisation; empty results are an error at ``where``."""
    text = normalize_text(raw)
    if not text:
        raise AsrkdError(f"{where}: transcript {raw!r} is empty after normalisation")
    return text


def pick(keys: Iterable[str], n: int, seed: int) -> set[str]:
    """``n`` of ``keys``, a seeded choice that depends on the ids, not on their order."""
    return set(rank_by_hash(keys, seed)[:n])


def split_keys(keys: Iterable[str], dev_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each key to train/dev/test: exactly ``round(f * N)`` keys to dev and to test."""
    keys = sorted(set(keys))
    n_test, n_dev = round(test_fraction * len(keys)), round(dev_fraction * len(keys))
    ranked = rank_by_hash(keys, seed)
    test, dev = set(ranked[:n_test]), set(ranked[n_test : n_test + n_dev])
    return {k: "test" if k in test else "dev" if k in dev else "train" for k in keys}


def split_speakers(
    spk_counts: dict[str, int], dev_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Assign whole speakers to train/dev/test (speaker-disjoint), in seeded random order, until
    each of test and dev holds at least its fraction of the utterances (at least one speaker).

    Needs 3 or more speakers."""
    if len(spk_counts) < 3:
        raise AsrkdError(f"a speaker-disjoint split needs at least 3 speakers, got {len(spk_counts)}")
    total = sum(spk_counts.values())
    ranked = rank_by_hash(spk_counts, seed)
    out: dict[str, str] = {}
    i = 0
    for split, frac in (("test", test_fraction), ("dev", dev_fraction)):
        got = 0
        while frac > 0 and i < len(ranked) - 1 and (got == 0 or got < frac * total):
            out[ranked[i]] = split
            got += spk_counts[ranked[i]]
            i += 1
    for spk in ranked[i:]:
        out[spk] = "train"
    if "train" not in out.values():
        raise AsrkdError("the dev/test fractions leave no speaker for training")
    return out


def make_data_dir(utts: list[Utt]) -> DataDir:
    """A DataDir of ``utts`` (absolute audio paths; extra tables from ``Utt.extra``)."""
    d = DataDir(wav={}, text={}, utt2spk={})
    for u in utts:
        if u.utt in d.utt2spk:
            raise AsrkdError(f"duplicate utterance id {u.utt!r} ({u.audio})")
        d.wav[u.utt] = str(Path(u.audio).resolve())
        d.text[u.utt] = u.text
        d.utt2spk[u.utt] = u.spk
        for name, value in u.extra.items():
            d.extra.setdefault(name, {})[u.utt] = value
    return d


def _unchanged(target: Path, d: DataDir) -> bool:
    """Does ``target`` already hold exactly the tables of ``d``? (Other files may be there.)"""
    try:
        old = read_data_dir(target)
    except AsrkdError:
        return False
    return (old.wav, old.text, old.utt2spk, old.segments) == (d.wav, d.text, d.utt2spk, d.segments) and all(
        old.extra.get(name) == table for name, table in d.extra.items()
    )


def write_splits(out_dir: Path, splits: dict[str, list[Utt]], force: bool = False) -> None:
    """Write ``out_dir/<split>/`` for each split and log its counts.

    Everything is checked before anything is written (splits non-empty, ids unique and not
    shared between splits). A split directory that already holds the same tables is left as
    it is (with its features); one with other content is refused unless ``force``, which
    replaces it whole, so that no features or labels of the old content survive."""
    seen: dict[str, str] = {}
    for name, utts in splits.items():
        if not utts:
            raise AsrkdError(f"split {name!r} is empty")
        for u in utts:
            if u.utt in seen:
                raise AsrkdError(f"utterance {u.utt!r} is in both {seen[u.utt]!r} and {name!r}")
            seen[u.utt] = name
    dirs = {name: make_data_dir(utts) for name, utts in splits.items()}
    todo = {}
    for name, d in dirs.items():
        target = Path(out_dir) / name
        if target.is_dir() and any(target.iterdir()):
            if _unchanged(target, d):
                log.info("%s: unchanged, kept as it is", target)
                continue
            if not force:
                raise AsrkdError(f"{target} exists with other content (--force replaces it, features included)")
        todo[name] = d
    for name, d in dirs.items():
        if name in todo:
            write_new_data_dir(Path(out_dir) / name, d, force=True)
        log.info("%s: %d utterances, %d speakers -> %s", name, len(d.utt2spk), len(set(d.utt2spk.values())),
                 Path(out_dir) / name)


def base_parser(description: str) -> argparse.ArgumentParser:
    """``CORPUS_DIR OUT_DIR [--seed]``; scripts add their own options."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("corpus_dir", type=Path, metavar="CORPUS_DIR", help="the corpus, as distributed")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="writes OUT_DIR/{train,dev,test}/")
    p.add_argument("--seed", type=int, default=0, help="seed of the deterministic dev/test choice")
    p.add_argument("--force", action="store_true", help="replace split directories that hold other content")
    return p


def main(parser: argparse.ArgumentParser, prepare: Callable[[argparse.Namespace], dict[str, list[Utt]]]) -> int:
    """Parse, log the command line, prepare and write the splits. Bad input: message, exit 2."""
    args = parser.parse_args()
    setup_logging()
    log.info("command line: %s", " ".join(sys.argv))
    try:
        if not args.corpus_dir.is_dir():
            raise AsrkdError(f"corpus directory not found: {args.corpus_dir}")
        write_splits(args.out_dir, prepare(args), force=args.force)
    except AsrkdError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        return 2
    return 0
