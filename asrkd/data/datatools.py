"""Subsets and unions of data directories (``asrkd subset-data``, ``asrkd combine-data``).

Selections are deterministic: "random" choices rank ids by a seeded hash of the id
(:func:`hash_unit`), so they do not depend on file order, and for one seed a smaller fraction
is always contained in a larger one (a 3% subset lies inside the 10% subset).

Only the tables travel (wav.scp text utt2spk spk2utt segments and every per-utterance
``utt2*`` table, e.g. utt2dur, utt2num_frames, utt2phn); features, CMVN and labels are not
copied (compute them for the new directory, or read the source's stores by utterance id).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable, Iterable

from asrkd.data.datadir import DataDir, Segment, read_data_dir, write_data_dir
from asrkd.errors import AsrkdError
from asrkd.fileio import remove_tree

log = logging.getLogger("asrkd.data.datatools")


def hash_unit(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``(key, seed)``: a random choice that depends on ids only."""
    digest = hashlib.sha256(f"{seed}\t{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def rank_by_hash(keys: Iterable[str], seed: int) -> list[str]:
    """``keys`` in seeded random order (ties, practically impossible, broken by key)."""
    return sorted(set(keys), key=lambda k: (hash_unit(k, seed), k))


def select_first(d: DataDir, n: int) -> list[str]:
    """The first ``n`` utterances in sorted order."""
    if n <= 0:
        raise AsrkdError(f"--first must be positive, got {n}")
    return d.utts[:n]


def select_fraction(d: DataDir, fraction: float, seed: int) -> list[str]:
    """``round(fraction * N)`` utterances (at least one), a seeded choice (see module doc)."""
    if not 0.0 < fraction <= 1.0:
        raise AsrkdError(f"--fraction must be in (0, 1], got {fraction}")
    n = max(1, round(fraction * len(d.utts)))
    return sorted(rank_by_hash(d.utts, seed)[:n])


def select_speakers(d: DataDir, speakers: Iterable[str]) -> list[str]:
    """All utterances of ``speakers`` (each must exist)."""
    wanted = set(speakers)
    known = set(d.utt2spk.values())
    unknown = sorted(wanted - known)
    if unknown:
        raise AsrkdError(f"unknown speaker(s): {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else ""))
    return [u for u in d.utts if d.utt2spk[u] in wanted]


def select_num_speakers(d: DataDir, n: int, seed: int) -> list[str]:
    """All utterances of ``n`` speakers chosen in seeded random order."""
    speakers = rank_by_hash(d.utt2spk.values(), seed)
    if not 0 < n <= len(speakers):
        raise AsrkdError(f"--num-speakers must be in 1..{len(speakers)}, got {n}")
    return select_speakers(d, speakers[:n])


def read_utt_list(path: Path) -> list[str]:
    """Utterance ids from the first field of each non-empty line of ``path``."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"utterance list not found: {path}")
    try:
        return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise AsrkdError(f"{path}: not valid UTF-8") from None


def select_utt_list(d: DataDir, utts: Iterable[str]) -> list[str]:
    """The listed utterances that ``d`` has; ids it lacks are counted in a warning."""
    wanted = set(utts)
    missing = sorted(wanted - set(d.utt2spk))
    if missing:
        log.warning("%d listed utterances are not in the data directory (first %r); ignored", len(missing), missing[0])
    return sorted(wanted & set(d.utt2spk))


def _same_utterances(a: DataDir, b: DataDir) -> bool:
    """Same utterances with the same audio, transcripts and speakers (the core tables; later
    steps add per-utterance tables such as utt2num_frames to a data dir)."""
    def segs(d: DataDir) -> dict[str, str] | None:  # as written (times to the millisecond)
        return None if d.segments is None else {u: f"{s.recording} {s.start:.3f} {s.end:.3f}"
                                                for u, s in d.segments.items()}

    return (a.utt2spk, a.text, a.wav, segs(a)) == (b.utt2spk, b.text, b.wav, segs(b))


def write_new_data_dir(dst: Path, d: DataDir, force: bool = False) -> bool:
    """Write ``d`` as a fresh directory ``dst``; returns False when ``dst`` already holds it.

    An existing ``dst`` with the same utterances (:func:`_same_utterances`) is complete: kept,
    with what later steps wrote into it (features), unless ``force``. Any other non-empty
    ``dst`` is refused unless ``force``, which replaces it whole, so no stale table survives.
    Written beside ``dst`` and renamed, so an interrupted run leaves no half-written ``dst``
    (an existing ``dst`` is complete)."""
    dst = Path(dst)
    if not d.utt2spk:
        raise AsrkdError(f"{dst}: refusing to write an empty data directory")
    if dst.exists() and any(dst.iterdir()) and not force:
        if (dst / "utt2spk").is_file() and _same_utterances(read_data_dir(dst), d):
            log.info("%s is complete; skipping (use --force to redo)", dst)
            return False
        raise AsrkdError(f"{dst} exists with other content (use --force to replace it)")
    tmp = dst.with_name(f".{dst.name}.tmp")
    remove_tree(tmp)
    write_data_dir(tmp, d)
    remove_tree(dst)
    tmp.rename(dst)
    return True


def _check_not_source(dst: Path, srcs: Iterable[Path]) -> None:
    for src in srcs:
        if Path(dst).resolve() == Path(src).resolve():
            raise AsrkdError(f"the output {dst} is also an input")


def subset_data(src: Path, dst: Path, select: Callable[[DataDir], list[str]], force: bool = False) -> DataDir:
    """Read ``src``, keep the utterances ``select(data_dir)`` returns, write them to ``dst``."""
    _check_not_source(dst, [src])
    d = read_data_dir(src)
    sub = d.subset(select(d))
    if not sub.utt2spk:
        raise AsrkdError("the selection is empty")
    if write_new_data_dir(dst, sub, force):
        log.info("%s: %d of %d utterances, %d speakers", dst, len(sub.utt2spk), len(d.utt2spk),
                 len(set(sub.utt2spk.values())))
    return sub


def combine_data(dst: Path, srcs: list[Path], force: bool = False) -> DataDir:
    """Write the union of ``srcs`` (see :func:`combine_data_dirs`) to ``dst``."""
    _check_not_source(dst, srcs)
    d = combine_data_dirs(srcs)
    if write_new_data_dir(dst, d, force):
        log.info("%s: %d utterances, %d speakers", dst, len(d.utt2spk), len(set(d.utt2spk.values())))
    return d


def _with_segments(d: DataDir) -> dict[str, Segment]:
    """Segments of ``d``; a directory without them gets whole-recording segments."""
    return d.segments if d.segments is not None else {u: Segment(u, 0.0, -1.0) for u in d.utt2spk}


def combine_data_dirs(srcs: list[Path]) -> DataDir:
    """The union of ``srcs``. An id present in several sources must have the same content
    (audio, transcript, speaker, segment) everywhere, else AsrkdError. Segments are kept if
    any source has them (whole-recording segments for the others); an extra ``utt2*`` table
    is kept only if every source has it (a partial table would be wrong)."""
    if not srcs:
        raise AsrkdError("nothing to combine")
    dirs = [(Path(s), read_data_dir(s)) for s in srcs]
    use_segments = any(d.segments is not None for _, d in dirs)
    common_extra = set.intersection(*(set(d.extra) for _, d in dirs))
    for name in sorted(set().union(*(set(d.extra) for _, d in dirs)) - common_extra):
        log.warning("dropping %s: not every source has it", name)
    out = DataDir(wav={}, text={}, utt2spk={}, segments={} if use_segments else None,
                  extra={n: {} for n in sorted(common_extra)})
    origin: dict[str, Path] = {}  # utterance or recording id -> first source
    repeated: list[str] = []  # ids met again with identical content
    for src, d in dirs:
        segs = _with_segments(d) if use_segments else None
        for rec, spec in d.wav.items():
            if rec in out.wav and out.wav[rec] != spec:
                raise AsrkdError(f"recording {rec!r} differs: {origin['rec:' + rec]} has {out.wav[rec]!r}, {src} has {spec!r}")
            out.wav[rec] = spec
            origin.setdefault("rec:" + rec, src)
        for utt in d.utts:
            if utt not in d.text:
                raise AsrkdError(f"{src}: utterance {utt!r} has no transcript (run validate-data)")
            new = (d.text[utt], d.utt2spk[utt], segs[utt] if segs else None,
                   tuple(d.extra[n].get(utt) for n in sorted(common_extra)))
            if utt in out.utt2spk:
                old = (out.text[utt], out.utt2spk[utt], out.segments[utt] if segs else None,
                       tuple(out.extra[n].get(utt) for n in sorted(common_extra)))
                if old != new:
                    raise AsrkdError(f"utterance {utt!r} is in {origin[utt]} and {src} with different content")
                repeated.append(utt)
                continue
            origin[utt] = src
            out.text[utt], out.utt2spk[utt] = d.text[utt], d.utt2spk[utt]
            if segs is not None:
                out.segments[utt] = segs[utt]
            for n in common_extra:
                out.extra[n][utt] = d.extra[n][utt]
    if repeated:
        log.warning("%d utterances are in several sources with identical content, kept once (first %r)",
                    len(repeated), repeated[0])
    return out
