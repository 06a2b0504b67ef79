"""data_prep/<corpus>.py on the real corpora (skipped when absent) and on tiny generated
LibriSpeech/TIMIT corpora laid out like the originals."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkd.data.datadir import DataDir, read_data_dir, read_table
from asrkd.text import normalize_text
from asrkd.data.validate import validate_data_dir

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
YESNO = SHARED / "yesno" / "waves_yesno"
FSDD = SHARED / "fsdd" / "recordings"
LJSPEECH = SHARED / "ljspeech" / "LJSpeech-1.1"
SPLITS = ("train", "dev", "test")


def prep(script: str, *args: object, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(REPO / "data_prep" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def load(out: Path) -> dict[str, DataDir]:
    return {s: read_data_dir(out / s) for s in SPLITS}


def check_common(out: Path, check_audio: bool = False) -> dict[str, DataDir]:
    """Properties every prepared corpus has; returns the split directories."""
    splits = load(out)
    seen: set[str] = set()
    for name, d in splits.items():
        report = validate_data_dir(out / name, check_audio=check_audio)
        assert report.ok, [str(p) for p in report.problems]
        assert d.utts and not seen & set(d.utts), f"{name} is empty or shares ids with another split"
        seen |= set(d.utts)
        for utt in d.utts:
            assert utt.startswith(d.utt2spk[utt] + "-"), utt
            assert Path(d.wav[utt]).is_absolute() and Path(d.wav[utt]).is_file()
            assert d.text[utt] and normalize_text(d.text[utt]) == d.text[utt]
        for table in ("wav.scp", "text", "utt2spk", "spk2utt"):
            keys = [line.split()[0] for line in (out / name / table).read_text().splitlines()]
            assert keys == sorted(keys), f"{name}/{table} not sorted"
    return splits


def speakers(d: DataDir) -> set[str]:
    return set(d.utt2spk.values())


def need(path: Path) -> None:
    if not path.is_dir():
        pytest.skip(f"corpus not present: {path}")


# ---------------------------------------------------------------- real corpora


def test_yesno(tmp_path: Path) -> None:
    need(YESNO)
    prep("yesno.py", YESNO, tmp_path)
    s = check_common(tmp_path, check_audio=True)
    assert [len(s[k].utts) for k in SPLITS] == [26, 4, 30]
    names = sorted(p.stem for p in YESNO.glob("*.wav"))
    stems = {k: {Path(s[k].wav[u]).stem for u in s[k].utts} for k in SPLITS}
    assert stems["train"] | stems["dev"] == set(names[:30]) and stems["test"] == set(names[30:])
    for k in SPLITS:
        for u in s[k].utts:
            bits = Path(s[k].wav[u]).stem.split("_")
            assert s[k].text[u].split() == ["YES" if b == "1" else "NO" for b in bits]


def test_fsdd(tmp_path: Path) -> None:
    need(FSDD)
    prep("fsdd.py", FSDD, tmp_path)
    s = check_common(tmp_path)
    assert [len(s[k].utts) for k in SPLITS] == [2400, 300, 300]
    assert speakers(s["train"]) == speakers(s["dev"]) == speakers(s["test"]) and len(speakers(s["test"])) == 6
    words = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
    takes = {"test": range(0, 5), "dev": range(5, 10), "train": range(10, 50)}
    for k in SPLITS:
        for u in s[k].utts:
            digit, _, take = Path(s[k].wav[u]).stem.split("_")
            assert int(take) in takes[k] and s[k].text[u] == words[int(digit)]


def test_ljspeech(tmp_path: Path) -> None:
    need(LJSPEECH)
    prep("ljspeech.py", LJSPEECH, tmp_path / "a")
    s = check_common(tmp_path / "a")
    meta = [line.split("|") for line in (LJSPEECH / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    n = len(meta)
    assert [len(s[k].utts) for k in SPLITS] == [n - 2 * round(0.1 * n), round(0.1 * n), round(0.1 * n)]
    assert all(speakers(s[k]) == {"LJ"} for k in SPLITS)
    normalized = {f"LJ-{m[0]}": normalize_text(m[2]) for m in meta}
    assert all(s[k].text[u] == normalized[u] for k in SPLITS for u in s[k].utts)
    # Deterministic for a seed, different for another.
    prep("ljspeech.py", LJSPEECH, tmp_path / "b")
    prep("ljspeech.py", LJSPEECH, tmp_path / "c", "--seed", 1)
    assert (tmp_path / "a/test/text").read_bytes() == (tmp_path / "b/test/text").read_bytes()
    assert read_data_dir(tmp_path / "c/test").utts != s["test"].utts


# ---------------------------------------------------------------- tiny generated corpora


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (tools/setup.sh installs it)")
    root = tmp_path_factory.mktemp("tiny")
    for corpus, sub in (("librispeech", "LibriSpeech"), ("timit", "TIMIT")):
        proc = subprocess.run([sys.executable, str(REPO / "data_prep/tiny_corpus.py"), corpus, str(root / sub)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return root


def test_tiny_corpora_look_like_the_originals(tiny: Path) -> None:
    flacs = sorted((tiny / "LibriSpeech").glob("*/*/*/*.flac"))
    assert flacs and all(re.fullmatch(r"\d+-\d+-\d{4}", f.stem) for f in flacs)
    assert all(sf.info(str(f)).format == "FLAC" and sf.info(str(f)).samplerate == 16000 for f in flacs)
    wavs = sorted((tiny / "TIMIT").glob("*/DR*/*/*.WAV"))
    assert wavs and all(sf.info(str(w)).format == "NIST" for w in wavs)
    for wav in wavs:
        n = sf.info(str(wav)).frames
        assert wav.with_suffix(".TXT").read_text().split()[:2] == ["0", str(n)]
        phn = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
        starts, ends = np.array([int(p[0]) for p in phn]), np.array([int(p[1]) for p in phn])
        assert phn[0][2] == phn[-1][2] == "h#" and starts[0] == 0 and ends[-1] == n
        assert np.all(starts[1:] == ends[:-1]) and np.all(ends > starts)  # contiguous, non-empty
        words = [line.split()[2] for line in wav.with_suffix(".WRD").read_text().splitlines()]
        assert " ".join(words).upper() == normalize_text(wav.with_suffix(".TXT").read_text().split(maxsplit=2)[2])


def test_librispeech(tiny: Path, tmp_path: Path) -> None:
    corpus = tiny / "LibriSpeech"
    prep("librispeech.py", corpus, tmp_path / "a", "--train", "train-clean-100", "--dev", "dev-clean",
         "--test", "test-clean")
    s = check_common(tmp_path / "a", check_audio=True)
    assert [len(s[k].utts) for k in SPLITS] == [6, 2, 2]
    assert not speakers(s["train"]) & (speakers(s["dev"]) | speakers(s["test"]))
    assert speakers(s["train"]) == {"19", "26"}
    trans = {}
    for t in corpus.glob("*/*/*/*.trans.txt"):
        trans.update(read_table(t))
    assert all(s[k].text[u] == normalize_text(trans[u]) for k in SPLITS for u in s[k].utts)
    # A comma list merges subsets.
    prep("librispeech.py", corpus, tmp_path / "b", "--train", "train-clean-100,dev-clean", "--test", "test-clean")
    assert len(read_data_dir(tmp_path / "b/train").utts) == 8 and not (tmp_path / "b/dev").exists()


def test_librispeech_missing_audio_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "LibriSpeech"
    shutil.copytree(tiny / "LibriSpeech", corpus)
    victim = sorted(corpus.glob("dev-clean/*/*/*.flac"))[0]
    victim.unlink()
    proc = prep("librispeech.py", corpus, tmp_path / "out", "--dev", "dev-clean", ok=False)
    assert proc.returncode == 2 and f"no audio file {victim.name}" in proc.stderr and "Traceback" not in proc.stderr


def test_timit(tiny: Path, tmp_path: Path) -> None:
    prep("timit.py", tiny / "TIMIT", tmp_path)
    s = check_common(tmp_path, check_audio=True)
    assert {k: speakers(s[k]) for k in SPLITS} == {"train": {"FCJF0", "MKLW0"}, "dev": {"FAKS0"}, "test": {"MDAB0"}}
    assert [len(s[k].utts) for k in SPLITS] == [4, 2, 2]  # SI + SX per speaker, SA dropped
    for k in SPLITS:
        assert not any("-SA" in u for u in s[k].utts)
        for table, suffix in (("utt2phn", ".PHN"), ("utt2wrd", ".WRD")):
            paths = read_table(tmp_path / k / table)
            assert set(paths) == set(s[k].utts)
            for u, p in paths.items():
                assert Path(p).is_file() and Path(p).suffix == suffix
                assert Path(p).with_suffix(".WAV") == Path(s[k].wav[u])


def test_timit_lower_case_layout(tiny: Path, tmp_path: Path) -> None:
    """Some copies of TIMIT have lower-case names; ids stay upper case."""
    lower = tmp_path / "timit"
    for f in (tiny / "TIMIT").rglob("*"):
        if f.is_file():
            dst = lower / str(f.relative_to(tiny / "TIMIT")).lower()
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
    prep("timit.py", lower, tmp_path / "out")
    assert read_data_dir(tmp_path / "out/test").utts == ["MDAB0-SI1039", "MDAB0-SX139"]


# ---------------------------------------------------------------- generic


def _generic_corpus(root: Path, speakers: list[str], per_speaker: int) -> None:
    rng = np.random.default_rng(0)
    (root / "audio" / "sub").mkdir(parents=True)
    lines, spk_lines = [], []
    for spk in speakers:
        for i in range(per_speaker):
            name = f"{spk}_{i}"
            ext = ".flac" if i % 2 else ".wav"  # both formats, one in a subfolder
            sf.write(root / "audio" / ("sub" if i % 2 else "") / f"{name}{ext}", rng.normal(0, 0.1, 4000), 16000)
            lines.append(f"{name} Hello, {spk} number {i}!\n")
            spk_lines.append(f"{name} {spk}\n")
    (root / "text.txt").write_text("".join(lines), encoding="utf-8")
    (root / "utt2spk").write_text("".join(spk_lines), encoding="utf-8")


def test_generic_speaker_disjoint(tmp_path: Path) -> None:
    spks = [f"s{i}" for i in range(8)]
    _generic_corpus(tmp_path, spks, 5)
    prep("generic.py", tmp_path / "audio", tmp_path / "out", "--text", tmp_path / "text.txt",
         "--utt2spk", tmp_path / "utt2spk", "--dev-fraction", "0.2", "--test-fraction", "0.2")
    s = check_common(tmp_path / "out", check_audio=True)
    sets = [speakers(s[k]) for k in SPLITS]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(spks)
    assert len(s["dev"].utts) >= 0.2 * 40 and len(s["test"].utts) >= 0.2 * 40
    assert s["dev"].text[s["dev"].utts[0]].startswith("HELLO S")


def test_generic_one_speaker_splits_by_utterance(tmp_path: Path) -> None:
    _generic_corpus(tmp_path, ["solo"], 20)
    prep("generic.py", tmp_path / "audio", tmp_path / "out", "--text", tmp_path / "text.txt", "--speaker", "solo")
    s = check_common(tmp_path / "out")
    assert [len(s[k].utts) for k in SPLITS] == [16, 2, 2]


def test_generic_transcript_without_audio(tmp_path: Path) -> None:
    _generic_corpus(tmp_path, ["solo"], 4)
    with open(tmp_path / "text.txt", "a", encoding="utf-8") as f:
        f.write("ghost some words\n")
    proc = prep("generic.py", tmp_path / "audio", tmp_path / "out", "--text", tmp_path / "text.txt", ok=False)
    assert proc.returncode == 2 and "'ghost' has no audio file" in proc.stderr


def test_rerun_keeps_same_content_and_refuses_other_content(tmp_path: Path) -> None:
    _generic_corpus(tmp_path, ["solo"], 20)
    args = (tmp_path / "audio", tmp_path / "out", "--text", tmp_path / "text.txt")
    prep("generic.py", *args)
    derived = tmp_path / "out/train/utt2num_frames"  # stands for features computed in the dir
    derived.write_text("".join(f"{u} 10\n" for u in read_data_dir(tmp_path / "out/train").utts))
    prep("generic.py", *args)  # same content: the directory and its derived files stay
    assert derived.exists()
    before = (tmp_path / "out/test/text").read_bytes()
    proc = prep("generic.py", *args, "--seed", 5, ok=False)  # other split: refused, nothing written
    assert proc.returncode == 2 and "exists with other content" in proc.stderr
    assert derived.exists() and (tmp_path / "out/test/text").read_bytes() == before
    prep("generic.py", *args, "--seed", 5, "--force")
    assert not derived.exists() and (tmp_path / "out/test/text").read_bytes() != before
    check_common(tmp_path / "out")
