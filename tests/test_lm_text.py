"""Text for the recipes' word LMs: no dev or test sentence gets into it (LJ Speech's
lm/metadata_other.csv, the synthetic corpus's source text without its sentences)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asrkd.data.datadir import read_table
from asrkd.text import normalize_text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # data_prep is run from the repo root, not installed

from data_prep.synth.corpus import SPLITS, SynthOptions, sentence_pools  # noqa: E402
from data_prep.synth.lm_text import write_lm_text  # noqa: E402

LJSPEECH = REPO.parent / "shared" / "data" / "ljspeech"


def _ljspeech(out: Path, meta: Path, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(REPO / "data_prep/ljspeech.py"), str(LJSPEECH / "LJSpeech-1.1"),
                           str(out), "--lm-metadata", str(meta)], capture_output=True, text=True, timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr
    return proc


def test_ljspeech_lm_text_is_the_other_sentences_normalised(tmp_path: Path) -> None:
    meta = LJSPEECH / "lm" / "metadata_other.csv"
    if not meta.is_file():
        pytest.skip(f"not present: {meta}")
    _ljspeech(tmp_path / "data", meta)
    lines = (tmp_path / "data" / "lm_text.txt").read_text(encoding="utf-8").splitlines()
    other = [normalize_text(line.split("|")[2]) for line in meta.read_text(encoding="utf-8").splitlines() if line]
    held = {t for s in ("dev", "test") for t in read_table(tmp_path / "data" / s / "text").values()}
    assert lines == [t for t in other if t and t not in held]
    assert len(lines) > 12000 and not set(lines) & held
    # A metadata file that holds a clip of the corpus is refused.
    bad = tmp_path / "bad.csv"
    first = (LJSPEECH / "LJSpeech-1.1" / "metadata.csv").read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(meta.read_text(encoding="utf-8") + first + "\n", encoding="utf-8")
    assert "must not contain the corpus" in _ljspeech(tmp_path / "data2", bad, ok=False).stderr


def test_synth_lm_text_leaves_out_every_sentence_of_the_corpus(tmp_path: Path) -> None:
    # A source text of 60 usable sentences (4..9 words, as the tiny preset wants), some repeated,
    # plus sentences the corpus filter rejects (digits, too short), which the LM text keeps.
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    sents = [" ".join(words[(i + j) % 12] for j in range(4 + i % 5)).capitalize() + "." for i in range(60)]
    text = "\n".join(f"{a} {b} Verse 12 is here. Short one." for a, b in zip(sents[::2], sents[1::2]))
    text += "\n" + sents[0] + "\n"
    src = tmp_path / "source.txt"
    src.write_text(text, encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "synth_config.json").write_text(json.dumps({"preset": "tiny", "seed": 3, "text_file": str(src)}))
    info = write_lm_text(corpus)
    out = (corpus / "lm_text.txt").read_text(encoding="utf-8").splitlines()
    pools = sentence_pools(SynthOptions(preset="tiny", seed=3, text_file=str(src)), text)
    used = {s.transcript for split in SPLITS for s in pools[split]}
    assert len(used) == 19 and not used & set(out)
    assert set(out) == {normalize_text(s) for s in sents} - used | {"VERSE 12 IS HERE", "SHORT ONE"}
    assert info["sentences"] == len(out) and info["excluded_sentences"] == {"train": 10, "dev": 4, "test": 5}
    before, mtime = (corpus / "lm_text.txt").read_bytes(), (corpus / "lm_text.txt").stat().st_mtime_ns
    write_lm_text(corpus)
    assert (corpus / "lm_text.txt").read_bytes() == before  # deterministic
    assert (corpus / "lm_text.txt").stat().st_mtime_ns == mtime  # and not rewritten (a rerun changes nothing)
