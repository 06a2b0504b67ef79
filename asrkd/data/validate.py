"""Check a Kaldi-style data directory and list every problem with its file, line and utterance.

Unlike :func:`asrkd.data.datadir.read_data_dir`, which stops at the first error, this reads the
tables leniently and keeps going, so that one run shows everything that is wrong:

- tables: present, UTF-8, sorted (C order), unique ids, no empty values;
- every utterance has a speaker (utt2spk), a transcript (text, non-empty) and audio (wav.scp,
  or segments + wav.scp); no table has ids the others do not know;
- spk2utt agrees with utt2spk, and sorting by utterance also groups speakers (speaker-prefixed
  ids, Kaldi's rule);
- per-utterance tables (``utt2*``) cover exactly the utterances, ``utt2dur``/``utt2num_frames``
  hold numbers;
- with audio checks: each file exists, decodes fully (soundfile), is not empty nor truncated
  (header vs. size), and every utterance lasts longer than one frame and less than an hour;
  segments lie inside their recording; utt2dur agrees with the audio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asrkd.data.audio import read_audio_file
from asrkd.errors import AsrkdError
from asrkd.framing import FrameSpec
from asrkd.logs import progress
from asrkd.text import normalize_text

log = logging.getLogger("asrkd.data.validate")

MIN_DURATION_S = FrameSpec().frame_length_ms / 1000.0  # shorter than one window: no frames
MAX_DURATION_S = 3600.0  # an hour: surely a whole recording that needs segments
DURATION_TOLERANCE_S = 0.01  # utt2dur and segment ends are written with limited precision
NUMERIC_TABLES = ("utt2dur", "utt2num_frames")


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located: ``file:line: utt: message`` (line/utt None when not known)."""

    file: str
    line: int | None
    utt: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.utt}: {self.message}" if self.utt else f"{where}: {self.message}"


@dataclass
class Report:
    """The outcome of :func:`validate_data_dir`. ``hours`` is None when durations are unknown."""

    problems: list[Problem] = field(default_factory=list)
    num_utts: int = 0
    num_speakers: int = 0
    hours: float | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        hours = "unknown" if self.hours is None else f"{self.hours:.3f}"
        return f"{self.num_utts} utterances, {self.num_speakers} speakers, {hours} hours"


@dataclass(frozen=True)
class _Entry:
    line: int
    value: str


class _Checker:
    """Accumulates problems while reading one data directory."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.problems: list[Problem] = []

    def add(self, name: str, line: int | None, utt: str | None, message: str) -> None:
        self.problems.append(Problem(str(self.dir / name), line, utt, message))

    def table(self, name: str, *, required: bool = True, what: str = "value") -> dict[str, _Entry] | None:
        """Read ``name`` leniently: every bad line is a problem, the good ones are returned."""
        path = self.dir / name
        if not path.is_file():
            if required:
                self.add(name, None, None, "file is missing")
            return None
        out: dict[str, _Entry] = {}
        prev: str | None = None
        unsorted_reported = False
        lines = path.read_bytes().split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the newline that ends the last line
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                self.add(name, lineno, None, "empty line")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                key = raw.split(maxsplit=1)[0].decode("utf-8", errors="replace")
                self.add(name, lineno, key, f"not valid UTF-8 (byte {e.start} of the line)")
                line = raw.decode("utf-8", errors="replace")
            parts = line.strip().split(maxsplit=1)
            key, value = parts[0], (parts[1] if len(parts) > 1 else "")
            if not value:
                self.add(name, lineno, key, f"empty {what}")
            if key in out:
                self.add(name, lineno, key, f"duplicate id (first at line {out[key].line})")
                continue
            if prev is not None and key < prev and not unsorted_reported:
                # Kaldi tools merge tables by streaming them in C order; report the first break.
                self.add(name, lineno, key, f"file is not sorted: {key!r} comes after {prev!r}")
                unsorted_reported = True
            prev = key
            out[key] = _Entry(lineno, value)
        return out

    def cross(self, have: dict[str, _Entry], name: str, need: set[str], message: str) -> None:
        """Report ids of table ``name`` (``have``) that are not in ``need``."""
        for key in sorted(set(have) - need):
            self.add(name, have[key].line, key, message)


def _check_audio_file(spec: str) -> tuple[str | None, float]:
    """Decode ``spec`` fully. Returns ``(problem or None, duration_s)``."""
    try:
        # The loader itself refuses pipes, missing, undecodable and truncated files.
        data, rate = read_audio_file(spec)
    except AsrkdError as e:
        return str(e), 0.0
    if data.size == 0:
        return f"audio is empty (0 samples): {spec}", 0.0
    if not np.all(np.isfinite(data)):
        return f"audio has non-finite samples: {spec}", 0.0
    return None, data.shape[0] / rate


def _check_duration(c: _Checker, name: str, line: int, utt: str, dur: float) -> None:
    if dur < MIN_DURATION_S:
        c.add(name, line, utt, f"too short: {dur:.3f} s is less than one {MIN_DURATION_S * 1000:.0f} ms frame")
    elif dur > MAX_DURATION_S:
        c.add(name, line, utt, f"too long: {dur:.0f} s (over an hour; cut it with segments)")


def validate_data_dir(path: Path, check_audio: bool = True) -> Report:
    """Check the data directory ``path`` (see module docstring). Never raises for bad content."""
    path = Path(path)
    if not path.is_dir():
        raise AsrkdError(f"data directory not found: {path}")
    c = _Checker(path)
    wav = c.table("wav.scp", what="audio path")
    text = c.table("text", what="transcript")
    utt2spk = c.table("utt2spk", what="speaker")
    spk2utt = c.table("spk2utt", what="utterance list")
    segments = c.table("segments", required=False, what="segment")
    wav, text, utt2spk = wav or {}, text or {}, utt2spk or {}
    utts = set(utt2spk)

    c.cross(text, "text", utts, "has a transcript but no speaker (not in utt2spk)")
    for utt, entry in sorted(text.items()):
        if entry.value.strip() and not normalize_text(entry.value):
            c.add("text", entry.line, utt, f"transcript has no words ({entry.value.strip()!r}: punctuation only)")
    for utt in sorted(utts - set(text)):
        c.add("utt2spk", utt2spk[utt].line, utt, "has no transcript (not in text)")
    seg_times = _check_segments(c, segments, wav, utts) if segments is not None else None
    if segments is None:
        c.cross(wav, "wav.scp", utts, "has audio but no speaker (not in utt2spk)")
        for utt in sorted(utts - set(wav)):
            c.add("utt2spk", utt2spk[utt].line, utt, "has no audio (not in wav.scp)")
    if spk2utt is not None:
        _check_spk2utt(c, spk2utt, utt2spk)
    _check_speaker_order(c, utt2spk)
    utt2dur = _check_extra_tables(c, utts)

    report = Report(num_utts=len(utts), num_speakers=len({e.value for e in utt2spk.values()}))
    if check_audio:
        durs = _check_audio(c, wav, utts, segments, seg_times)
        for utt in sorted(set(durs) & set(utt2dur or {})):
            if abs(durs[utt] - utt2dur[utt]) > DURATION_TOLERANCE_S:
                c.add("utt2dur", None, utt, f"says {utt2dur[utt]:.3f} s but the audio lasts {durs[utt]:.3f} s")
        report.hours = sum(durs.values()) / 3600.0
    elif utt2dur is not None:
        report.hours = sum(utt2dur.values()) / 3600.0
    report.problems = c.problems
    log.debug("validated %s: %d problems, %s", path, len(c.problems), report.summary())
    return report


def _check_segments(
    c: _Checker, segments: dict[str, _Entry], wav: dict[str, _Entry], utts: set[str]
) -> dict[str, tuple[str, float, float]]:
    """Check ``segments`` lines; returns ``{utt: (recording, start, end)}`` of the good ones."""
    c.cross(segments, "segments", utts, "has a segment but no speaker (not in utt2spk)")
    for utt in sorted(utts - set(segments)):
        c.add("segments", None, utt, "has no segment")
    good: dict[str, tuple[str, float, float]] = {}
    for utt, e in segments.items():
        parts = e.value.split()
        try:
            if len(parts) != 3:
                raise ValueError
            rec, start, end = parts[0], float(parts[1]), float(parts[2])
        except ValueError:
            c.add("segments", e.line, utt, f"bad segment {e.value!r} (want '<recording> <start> <end>')")
            continue
        if rec not in wav:
            c.add("segments", e.line, utt, f"recording {rec!r} is not in wav.scp")
        elif start < 0 or (end >= 0 and end <= start):
            c.add("segments", e.line, utt, f"bad times: start {start} s, end {end} s")
        else:
            good[utt] = (rec, start, end)
    return good


def _check_spk2utt(c: _Checker, spk2utt: dict[str, _Entry], utt2spk: dict[str, _Entry]) -> None:
    listed: dict[str, str] = {}
    for spk, e in spk2utt.items():
        for utt in e.value.split():
            if utt in listed:
                c.add("spk2utt", e.line, utt, f"listed twice (speakers {listed[utt]!r} and {spk!r})")
            listed[utt] = spk
            if utt not in utt2spk:
                c.add("spk2utt", e.line, utt, f"listed under speaker {spk!r} but not in utt2spk")
            elif utt2spk[utt].value != spk:
                c.add("spk2utt", e.line, utt, f"listed under speaker {spk!r} but utt2spk says {utt2spk[utt].value!r}")
    for utt, e in utt2spk.items():
        if e.value not in spk2utt:
            c.add("utt2spk", e.line, utt, f"unknown speaker: speaker {e.value!r} is not in spk2utt")
        elif utt not in listed:
            c.add("utt2spk", e.line, utt, f"speaker {e.value!r} does not list this utterance in spk2utt")


def _check_speaker_order(c: _Checker, utt2spk: dict[str, _Entry]) -> None:
    """Kaldi's rule: sorting by utterance id must also sort by speaker (speaker-prefixed ids)."""
    prev_utt, prev_spk = None, ""
    for utt in sorted(utt2spk):
        spk = utt2spk[utt].value
        if prev_utt is not None and spk < prev_spk:
            c.add("utt2spk", utt2spk[utt].line, utt,
                  f"utterance ids are not speaker-prefixed: speaker {spk!r} sorts before {prev_spk!r} "
                  f"of the preceding utterance {prev_utt!r}")
            return
        prev_utt, prev_spk = utt, spk


def _check_extra_tables(c: _Checker, utts: set[str]) -> dict[str, float] | None:
    """Check every ``utt2*`` table (except utt2spk); returns utt2dur as floats if present."""
    utt2dur = None
    for path in sorted(c.dir.glob("utt2*")):
        name = path.name
        if name == "utt2spk" or not path.is_file():
            continue
        table = c.table(name) or {}
        c.cross(table, name, utts, "is not an utterance of this directory")
        missing = sorted(utts - set(table))
        if missing:
            c.add(name, None, missing[0], f"{len(missing)} utterance(s) missing from {name}, first {missing[0]!r}")
        if name in NUMERIC_TABLES:
            numbers: dict[str, float] = {}
            for utt, e in table.items():
                try:
                    numbers[utt] = float(e.value)
                except ValueError:
                    c.add(name, e.line, utt, f"not a number: {e.value!r}")
            if name == "utt2dur":
                utt2dur = numbers
    return utt2dur


def _check_audio(
    c: _Checker,
    wav: dict[str, _Entry],
    utts: set[str],
    segments: dict[str, _Entry] | None,
    seg_times: dict[str, tuple[str, float, float]] | None,
) -> dict[str, float]:
    """Decode every recording; returns the duration in seconds of each good utterance."""
    rec_dur: dict[str, float] = {}
    for rec in progress(sorted(wav), total=len(wav), desc="validate audio"):
        problem, dur = _check_audio_file(wav[rec].value)
        if problem:
            c.add("wav.scp", wav[rec].line, rec, problem)
        else:
            rec_dur[rec] = dur
    durs: dict[str, float] = {}
    if segments is None:
        for utt in sorted(utts & set(rec_dur)):
            _check_duration(c, "wav.scp", wav[utt].line, utt, rec_dur[utt])
            durs[utt] = rec_dur[utt]
        return durs
    for utt, (rec, start, end) in sorted((seg_times or {}).items()):
        if rec not in rec_dur:
            continue
        line = segments[utt].line
        end = rec_dur[rec] if end < 0 else end
        if end > rec_dur[rec] + DURATION_TOLERANCE_S:
            c.add("segments", line, utt, f"ends at {end:.3f} s, after the end of recording {rec!r} ({rec_dur[rec]:.3f} s)")
            continue
        _check_duration(c, "segments", line, utt, end - start)
        durs[utt] = end - start
    return durs
