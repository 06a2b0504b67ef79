"""Kaldi-style data directories: ``wav.scp text utt2spk spk2utt [segments utt2dur utt2num_frames]``.

Each file is a ``<key> <value>`` table, one entry per line, sorted by key (C locale order, as
Kaldi's ``utils/fix_data_dir.sh`` leaves them). Utterance ids are speaker-prefixed so that
sorting by utterance also groups speakers. We read tables into dicts and write them sorted.

``segments`` lines are ``<utt> <recording> <start_s> <end_s>``; with segments, ``wav.scp`` is
keyed by recording id instead of utterance id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_text


@dataclass(frozen=True)
class Segment:
    """A piece of a recording: ``start``/``end`` in seconds (end < 0 means to the end)."""

    recording: str
    start: float
    end: float


def read_table(path: Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a ``<key> <value>`` file. Errors name the file and line.

    Returns ``{key: value}`` where value is the rest of the line after the first whitespace.
    """
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"missing file: {path}")
    out: dict[str, str] = {}
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise AsrkdError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        key = parts[0]
        value = parts[1] if len(parts) > 1 else ""
        if not value and not allow_empty_value:
            raise AsrkdError(f"{path}:{lineno}: entry {key!r} has no value")
        if key in out:
            raise AsrkdError(f"{path}:{lineno}: duplicate id {key!r}")
        out[key] = value
    return out


def write_table(path: Path, table: dict[str, str]) -> None:
    """Write ``table`` sorted by key, atomically."""
    for k in table:
        if not k or any(c.isspace() for c in k):
            raise AsrkdError(f"{path}: id {k!r} is empty or contains white space")
    text = "".join(f"{k} {table[k]}\n" for k in sorted(table))
    atomic_write_text(Path(path), text)


UTT2NUM_FRAMES = "utt2num_frames"  # frames per utterance of <data>/feats (compute-feats, import-feats, augment-feats)


def read_num_frames(data_dir: Path) -> dict[str, int]:
    """``{utt: frames}`` from ``<data_dir>/utt2num_frames``: the counts every frame store of the
    directory (features, labels, soft targets) is checked against. AsrkdError when the file is
    missing or a count is not a non-negative integer."""
    path = Path(data_dir) / UTT2NUM_FRAMES
    out: dict[str, int] = {}
    for utt, n in read_table(path).items():
        if not n.isdigit():
            raise AsrkdError(f"{path}: {utt}: frame count {n!r} is not a non-negative integer")
        out[utt] = int(n)
    return out


def write_num_frames(data_dir: Path, counts: dict[str, int]) -> None:
    """Write ``<data_dir>/utt2num_frames`` (sorted, atomically) from ``{utt: frames}``."""
    write_table(Path(data_dir) / UTT2NUM_FRAMES, {u: str(int(n)) for u, n in counts.items()})


def spk2utt_from_utt2spk(utt2spk: dict[str, str]) -> dict[str, str]:
    spk: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk.setdefault(utt2spk[utt], []).append(utt)
    return {s: " ".join(us) for s, us in spk.items()}


@dataclass
class DataDir:
    """An in-memory data directory. ``wav`` is keyed by recording (= utterance without segments)."""

    wav: dict[str, str]
    text: dict[str, str]
    utt2spk: dict[str, str]
    segments: dict[str, Segment] | None = None
    extra: dict[str, dict[str, str]] = field(default_factory=dict)  # utt2dur, utt2num_frames ...

    @property
    def utts(self) -> list[str]:
        """Sorted utterance ids."""
        return sorted(self.utt2spk)

    def recording_of(self, utt: str) -> str:
        return self.segments[utt].recording if self.segments else utt

    def segment_of(self, utt: str) -> Segment | None:
        return self.segments[utt] if self.segments else None

    @property
    def spk2utt(self) -> dict[str, str]:
        return spk2utt_from_utt2spk(self.utt2spk)

    def subset(self, utts: list[str] | set[str]) -> "DataDir":
        """A new DataDir restricted to ``utts`` (extra per-utterance tables follow)."""
        keep = set(utts) & set(self.utt2spk)
        segs = {u: s for u, s in self.segments.items() if u in keep} if self.segments else None
        recs = {s.recording for s in segs.values()} if segs is not None else keep
        return DataDir(
            wav={r: v for r, v in self.wav.items() if r in recs},
            text={u: t for u, t in self.text.items() if u in keep},
            utt2spk={u: s for u, s in self.utt2spk.items() if u in keep},
            segments=segs,
            extra={n: {u: v for u, v in t.items() if u in keep} for n, t in self.extra.items()},
        )


def read_data_dir(path: Path) -> DataDir:
    """Read a data directory: the core tables, ``segments`` if present, and every other
    per-utterance ``utt2*`` table (utt2dur, utt2num_frames, corpus-specific ones) into ``extra``.

    Only the file formats are checked here; :mod:`asrkd.data.validate` checks consistency."""
    path = Path(path)
    if not path.is_dir():
        raise AsrkdError(f"data directory not found: {path}")
    wav = read_table(path / "wav.scp")
    text = read_table(path / "text", allow_empty_value=True)
    utt2spk = read_table(path / "utt2spk")
    segments = None
    if (path / "segments").is_file():
        segments = {}
        for utt, rest in read_table(path / "segments").items():
            parts = rest.split()
            if len(parts) != 3:
                raise AsrkdError(f"{path / 'segments'}: bad line for {utt!r}: {rest!r}")
            try:
                segments[utt] = Segment(parts[0], float(parts[1]), float(parts[2]))
            except ValueError:
                raise AsrkdError(f"{path / 'segments'}: bad times for {utt!r}: {rest!r}") from None
    extra = {
        p.name: read_table(p)
        for p in sorted(path.glob("utt2*"))
        if p.is_file() and p.name != "utt2spk"
    }
    return DataDir(wav=wav, text=text, utt2spk=utt2spk, segments=segments, extra=extra)


def write_data_dir(path: Path, d: DataDir) -> None:
    """Write all tables sorted, plus spk2utt derived from utt2spk."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_table(path / "wav.scp", d.wav)
    write_table(path / "text", d.text)
    write_table(path / "utt2spk", d.utt2spk)
    write_table(path / "spk2utt", d.spk2utt)
    if d.segments is not None:
        write_table(
            path / "segments",
            {u: f"{s.recording} {s.start:.3f} {s.end:.3f}" for u, s in d.segments.items()},
        )
    elif (path / "segments").exists():
        (path / "segments").unlink()
    for name, table in d.extra.items():
        write_table(path / name, table)
