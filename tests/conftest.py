"""Shared fixtures (keep small): the real corpora in ../shared/data and tiny data directories."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
YESNO = SHARED_DATA / "yesno" / "waves_yesno"
LJSPEECH_WAVS = SHARED_DATA / "ljspeech" / "LJSpeech-1.1" / "wavs"


def _files_or_skip(folder: Path, n: int) -> list[Path]:
    files = sorted(folder.glob("*.wav"))[:n]
    if len(files) < n:
        pytest.skip(f"shared corpus not found at {folder} (see ../shared/data/README.md)")
    return files


@pytest.fixture
def yesno_wavs() -> list[Path]:
    """Four real yes/no recordings (8 kHz), or skip when ../shared/data is absent."""
    return _files_or_skip(YESNO, 4)


@pytest.fixture
def ljspeech_wavs() -> list[Path]:
    """Two real LJ Speech clips (22.05 kHz), or skip when ../shared/data is absent."""
    return _files_or_skip(LJSPEECH_WAVS, 2)
