"""The synthetic corpus (data_prep/synth) on its ``tiny`` preset: valid data dirs, CTM word
sequences equal to transcripts, timings monotonic and inside the audio, same seed -> same
audio and timings (across worker counts and a killed-then-resumed run), and the pause/word
energy sanity check."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # data_prep is run from the repo root, not installed

from asrkd.data.datadir import read_data_dir  # noqa: E402
from data_prep.synth.energy import pause_word_energy  # noqa: E402
from data_prep.synth.reference import parse_ctm  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("festival") is None or shutil.which("bible") is None,
    reason="TTS engines / text package not installed (run tools/setup.sh)",
)
SPLITS = ("train", "dev", "test")


def _cmd(out: Path, nj: int, seed: int = 7) -> list[str]:
    return [sys.executable, "-m", "data_prep.synth", "make", "--preset", "tiny",
            "--out", str(out), "--nj", str(nj), "--seed", str(seed)]


def _make(out: Path, nj: int) -> None:
    subprocess.run(_cmd(out, nj), cwd=ROOT, check=True, capture_output=True, timeout=300)


def _fingerprint(out: Path) -> dict[str, str]:
    """Hash of every wav and of every table/CTM of every split."""
    fp = {}
    for split in SPLITS:
        d = out / split
        for name in ("text", "utt2spk", "utt2dur", "ref_word.ctm", "ref_phone.ctm"):
            fp[f"{split}/{name}"] = hashlib.sha256((d / name).read_bytes()).hexdigest()
        for utt, wav in read_data_dir(d).wav.items():
            fp[f"{split}/{utt}.wav"] = hashlib.sha256(Path(wav).read_bytes()).hexdigest()
    return fp


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    _make(out, nj=2)
    return out


def test_data_dirs_valid(corpus: Path) -> None:
    total = 0
    for split in SPLITS:
        d = read_data_dir(corpus / split)
        assert d.utts, split
        assert set(d.wav) == set(d.text) == set(d.utt2spk) == set(d.extra["utt2dur"])
        for utt in d.utts:
            assert utt.startswith(d.utt2spk[utt] + "-"), "utterance ids are speaker-prefixed"
            info = sf.info(d.wav[utt])
            assert info.samplerate == 16000 and info.channels == 1
            assert abs(info.frames / 16000 - float(d.extra["utt2dur"][utt])) < 1e-3
            assert d.text[utt].split()
            total += info.frames / 16000
    assert 30 < total < 120, "tiny is about a minute of audio"
    # Held-out voices: no (engine, voice) of dev/test in train.
    spk = {s: set(read_data_dir(corpus / s).utt2spk.values()) for s in SPLITS}
    voice = lambda s: s.rsplit("-", 1)[0]  # noqa: E731 - speaker minus prosody suffix
    train_voices = {voice(s) for s in spk["train"]}
    for split in ("dev", "test"):
        assert not {voice(s) for s in spk[split]} & train_voices


def test_ctm_matches_transcripts_and_audio(corpus: Path) -> None:
    engines = set()
    for split in SPLITS:
        d = read_data_dir(corpus / split)
        words = parse_ctm((corpus / split / "ref_word.ctm").read_text())
        phones = parse_ctm((corpus / split / "ref_phone.ctm").read_text())
        assert set(words) == set(phones) == set(d.utts)
        for utt in d.utts:
            engines.add(d.utt2spk[utt].split("-")[0])
            dur = float(d.extra["utt2dur"][utt])
            assert [w.token for w in words[utt]] == d.text[utt].split()
            ph = phones[utt]
            assert ph[0].start == 0.0 and abs(ph[-1].end - dur) <= 0.0015
            for a, b in zip(ph, ph[1:]):
                assert abs(b.start - a.end) < 1.5e-3 and b.end > b.start, "phones tile the audio"
            ws = words[utt]
            for a, b in zip(ws, ws[1:]):
                assert b.start >= a.end - 1e-6, "words in order, no overlap"
            assert all(0 <= w.start < w.end <= dur + 1e-3 for w in ws)
            # every word lies on phone boundaries and holds at least one non-pause phone
            bounds = {round(p.start, 3) for p in ph} | {round(p.end, 3) for p in ph}
            for w in ws:
                assert round(w.start, 3) in bounds and round(w.end, 3) in bounds
                inside = [p for p in ph if p.start >= w.start - 1e-6 and p.end <= w.end + 1e-6]
                assert inside and all(p.token != "SIL" for p in inside)
    assert engines == {"esp", "flit", "fest"}, "every engine is represented"


def test_pause_energy_far_below_word_energy(corpus: Path) -> None:
    e = pause_word_energy(corpus / "test")  # test split is clean by default
    assert e["pause_seconds"] > 0.5 and e["word_seconds"] > 5
    assert e["pause_minus_word_db"] < -25, e


def test_same_seed_identical_after_kill_and_resume(corpus: Path, tmp_path: Path) -> None:
    """A run killed part-way, then resumed with another worker count, ends identical to the
    reference run (same seed); the utterances made before the kill are reused untouched."""
    out = tmp_path / "tiny"
    proc = subprocess.Popen(_cmd(out, nj=1), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    # Wait for 3 finished utterances (a loaded machine can take minutes to get there).
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list(out.glob("work/*/*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in out.glob("work/*/*.json")}
    assert before, "no utterance was finished before the kill (600 s)"
    assert not (out / ".done").exists(), "the run was killed before finishing"
    subprocess.run(_cmd(out, nj=2), cwd=ROOT, check=True, capture_output=True, timeout=300)
    assert (out / ".done").exists()
    for p, t in before.items():
        assert p.stat().st_mtime_ns == t, f"{p.name} was remade instead of reused"
    assert _fingerprint(out) == _fingerprint(corpus)


def test_other_seed_other_plan(tmp_path: Path) -> None:
    """The seed matters: another seed picks other sentences (so identity above means something)."""
    from data_prep.synth.corpus import SynthOptions, plan

    a = [j.sentence.transcript for j in plan(SynthOptions(preset="tiny", seed=7), tmp_path)]
    b = [j.sentence.transcript for j in plan(SynthOptions(preset="tiny", seed=8), tmp_path)]
    assert a != b and len(a) == len(b)
    train = {j.sentence.transcript for j in plan(SynthOptions(preset="tiny", seed=7), tmp_path) if j.split == "train"}
    held = {j.sentence.transcript for j in plan(SynthOptions(preset="tiny", seed=7), tmp_path) if j.split != "train"}
    assert not train & held, "dev/test sentences are disjoint from training sentences"
