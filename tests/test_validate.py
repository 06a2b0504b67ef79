"""``asrkd validate-data`` on a good directory and on a corpus of deliberately broken ones:
one case per kind of damage, each with its own message naming the utterance and file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from asrkd.cli import main
from asrkd.data.validate import validate_data_dir

UTTS = {"spkA-u1": "spkA", "spkA-u2": "spkA", "spkB-u1": "spkB"}  # sorted, speaker-prefixed


def make_good(root: Path) -> Path:
    """A valid data dir: three 0.5 s utterances of two speakers."""
    d = root / "data"
    (root / "audio").mkdir(parents=True)
    d.mkdir()
    rng = np.random.default_rng(0)
    wav, text, u2s = [], [], []
    for utt, spk in UTTS.items():
        path = root / "audio" / f"{utt}.wav"
        sf.write(path, rng.normal(0, 0.1, 8000), 16000, subtype="PCM_16")
        wav.append(f"{utt} {path}\n")
        text.append(f"{utt} HELLO {utt.upper()}\n")
        u2s.append(f"{utt} {spk}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "text").write_text("".join(text))
    (d / "utt2spk").write_text("".join(u2s))
    (d / "spk2utt").write_text("spkA spkA-u1 spkA-u2\nspkB spkB-u1\n")
    return d


def replace_line(path: Path, key: str, new: bytes | None) -> None:
    """Replace (or with None drop) the line of ``key`` in a table."""
    lines = path.read_bytes().splitlines(keepends=True)
    out = [line for line in lines if not line.startswith(key.encode() + b" ")]
    if new is not None:
        idx = next(i for i, line in enumerate(lines) if line.startswith(key.encode() + b" "))
        out.insert(idx, new)
    path.write_bytes(b"".join(out))


def audio_of(d: Path, utt: str) -> Path:
    return d.parent / "audio" / f"{utt}.wav"


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    rc = main(["validate-data", *args])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_good_dir_passes_with_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = make_good(tmp_path)
    rc, out = run_cli(capsys, str(d))
    assert rc == 0 and "OK: 3 utterances, 2 speakers, 0.000 hours" in out
    report = validate_data_dir(d)
    assert report.ok and report.hours == pytest.approx(1.5 / 3600)


def _truncate(d: Path) -> None:
    p = audio_of(d, "spkA-u2")
    p.write_bytes(p.read_bytes()[:3000])


def _tiny_audio(d: Path) -> None:
    sf.write(audio_of(d, "spkA-u2"), np.zeros(100), 16000)  # 6 ms: less than one frame


def _add_segments_past_end(d: Path) -> None:
    (d / "segments").write_text("spkA-u1 spkA-u1 0.0 0.4\nspkA-u2 spkA-u2 0.1 0.9\nspkB-u1 spkB-u1 0 -1\n")


BROKEN: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # case: (damage, utterance the message must name, message text (with file:line where known))
    "missing audio file": (lambda d: audio_of(d, "spkA-u2").unlink(), "spkA-u2", "wav.scp:2: spkA-u2: audio file not found"),
    "undecodable file": (lambda d: audio_of(d, "spkA-u2").write_bytes(b"not audio at all" * 64), "spkA-u2",
                         "wav.scp:2: spkA-u2: cannot decode audio"),
    "empty audio": (lambda d: sf.write(audio_of(d, "spkA-u2"), np.zeros(0), 16000), "spkA-u2",
                    "wav.scp:2: spkA-u2: audio is empty"),
    "truncated wav": (_truncate, "spkA-u2", "truncated"),
    "too short": (_tiny_audio, "spkA-u2", "wav.scp:2: spkA-u2: too short"),
    "segment past the end": (_add_segments_past_end, "spkA-u2", "segments:2: spkA-u2: ends at 0.900 s, after the end"),
    "empty transcript": (lambda d: replace_line(d / "text", "spkA-u2", b"spkA-u2 \n"), "spkA-u2",
                         "text:2: spkA-u2: empty transcript"),
    "punctuation-only transcript": (lambda d: replace_line(d / "text", "spkA-u2", b"spkA-u2 ... !\n"), "spkA-u2",
                                    "text:2: spkA-u2: transcript has no words"),
    "non-UTF-8 transcript": (lambda d: replace_line(d / "text", "spkA-u2", b"spkA-u2 caf\xe9 au lait\n"), "spkA-u2",
                             "text:2: spkA-u2: not valid UTF-8"),
    "duplicate id": (lambda d: replace_line(d / "text", "spkA-u2", b"spkA-u2 ONE\nspkA-u2 TWO\n"), "spkA-u2",
                     "text:3: spkA-u2: duplicate id (first at line 2)"),
    "no speaker": (lambda d: (replace_line(d / "utt2spk", "spkA-u2", None),
                              (d / "spk2utt").write_text("spkA spkA-u1\nspkB spkB-u1\n")), "spkA-u2",
                   "text:2: spkA-u2: has a transcript but no speaker"),
    "unknown speaker": (lambda d: replace_line(d / "utt2spk", "spkB-u1", b"spkB-u1 spkZ\n"), "spkB-u1",
                        "utt2spk:3: spkB-u1: unknown speaker: speaker 'spkZ' is not in spk2utt"),
    "no transcript": (lambda d: replace_line(d / "text", "spkA-u2", None), "spkA-u2",
                      "utt2spk:2: spkA-u2: has no transcript"),
    "no audio entry": (lambda d: replace_line(d / "wav.scp", "spkA-u2", None), "spkA-u2",
                       "utt2spk:2: spkA-u2: has no audio"),
    "unsorted file": (lambda d: (d / "wav.scp").write_bytes(
        b"".join(sorted((d / "wav.scp").read_bytes().splitlines(keepends=True), reverse=True))), "spkA-u2",
        "wav.scp:2: spkA-u2: file is not sorted"),
    "spk2utt disagrees": (lambda d: (d / "spk2utt").write_text("spkA spkA-u1\nspkB spkA-u2 spkB-u1\n"), "spkA-u2",
                          "spk2utt:2: spkA-u2: listed under speaker 'spkB' but utt2spk says 'spkA'"),
    "ids not speaker-prefixed": (lambda d: (replace_line(d / "utt2spk", "spkA-u1", b"spkA-u1 zed\n"),
                                            (d / "spk2utt").write_text("spkA spkA-u2\nspkB spkB-u1\nzed spkA-u1\n")),
                                 "spkA-u2", "utt2spk:2: spkA-u2: utterance ids are not speaker-prefixed"),
    "stale utt2dur": (lambda d: (d / "utt2dur").write_text("spkA-u1 0.5\nspkA-u2 7.25\nspkB-u1 0.5\n"), "spkA-u2",
                      "utt2dur: spkA-u2: says 7.250 s but the audio lasts 0.500 s"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_input_is_reported(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damage, utt, message = BROKEN[case]
    d = make_good(tmp_path)
    damage(d)
    rc, out = run_cli(capsys, str(d))
    assert rc == 1, out
    assert message in out, out
    assert utt in out
    assert "Traceback" not in out and "OK:" not in out
    # Exactly the damage is reported: the other utterances are clean.
    report = validate_data_dir(d)
    assert report.problems and all(p.utt == utt for p in report.problems), [str(p) for p in report.problems]


def test_no_audio_skips_audio_but_not_tables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = make_good(tmp_path)
    audio_of(d, "spkA-u2").unlink()
    rc, out = run_cli(capsys, str(d), "--no-audio")
    assert rc == 0 and "3 utterances, 2 speakers, unknown hours" in out
    replace_line(d / "text", "spkA-u2", b"spkA-u2 \n")
    rc, out = run_cli(capsys, str(d), "--no-audio")
    assert rc == 1 and "empty transcript" in out


def test_missing_table_and_missing_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = make_good(tmp_path)
    (d / "spk2utt").unlink()
    rc, out = run_cli(capsys, str(d))
    assert rc == 1 and "spk2utt: file is missing" in out
    rc, out = run_cli(capsys, str(tmp_path / "nowhere"))
    assert rc == 2 and "data directory not found" in out


def test_exit_status_of_the_installed_command(tmp_path: Path) -> None:
    d = make_good(tmp_path)
    audio_of(d, "spkB-u1").unlink()
    proc = subprocess.run([sys.executable, "-m", "asrkd", "validate-data", str(d)], capture_output=True, text=True)
    assert proc.returncode == 1 and "spkB-u1: audio file not found" in proc.stdout
    assert "1 problem(s) found" in proc.stderr
