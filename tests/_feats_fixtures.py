"""Helpers for the feature tests: tiny data directories and generated audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_data_dir_for(path: Path, wavs: dict[str, Path | str], speaker: str | None = None) -> Path:
    """A minimal data directory ``{utt: audio}``; speaker = ``speaker`` or the id before '-'."""
    from asrkd.data.datadir import DataDir, write_data_dir

    spk = {u: speaker or u.split("-")[0] for u in wavs}
    write_data_dir(path, DataDir(wav={u: str(w) for u, w in wavs.items()}, text={u: "YES" for u in wavs}, utt2spk=spk))
    return path


def write_noise_wav(path: Path, seconds: float, rate: int = 16000, seed: int = 0) -> Path:
    """A 16-bit WAV of low-level noise plus a tone (deterministic)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    x = 0.1 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n)
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    return path
