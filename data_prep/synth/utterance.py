"""Make one utterance: synthesise, check the engine's timings, resample to 16 kHz, augment,
and write the wav and a record (json) atomically. An existing record is reused (resume)."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from asrkd.data.audio import resample
from asrkd.fileio import atomic_write_bytes, atomic_write_json, read_json

from .isolate import run_isolated
from .reference import Synthesis, Timed, TimingError, check_reference
from .text_source import Sentence
from .voices import VoiceConfig

log = logging.getLogger("asrkd.synth")

SAMPLE_RATE = 16000
_ENGINES: dict[str, Any] = {}


@dataclass(frozen=True)
class Augment:
    """Loudness variation and additive noise (applied with probability ``noise_prob``)."""

    enabled: bool = False
    gain_db: tuple[float, float] = (-10.0, 3.0)  # dB, uniform
    noise_prob: float = 0.5  # fraction of utterances that get noise
    snr_db: tuple[float, float] = (10.0, 35.0)  # dB (speech power over noise power), uniform


@dataclass(frozen=True)
class Job:
    utt: str
    split: str
    speaker: str
    sentence: Sentence
    voice: VoiceConfig
    augment: Augment
    seed: int
    out_dir: str


def _engine(name: str) -> Any:
    if name not in _ENGINES:
        if name == "espeak":
            from .engines.espeak import Espeak

            _ENGINES[name] = Espeak()
        else:
            from .engines.flite import Flite

            _ENGINES[name] = Flite()
    return _ENGINES[name]


def _synth_espeak(sent: Sentence, v: VoiceConfig) -> Synthesis:
    return _engine("espeak").synthesize(sent, v.voice, v.rate, v.pitch)


def _synth_flite(sent: Sentence, v: VoiceConfig) -> Synthesis:
    return _engine("flite").synthesize(sent, v.voice, v.stretch)


def synthesize(sent: Sentence, v: VoiceConfig) -> Synthesis:
    """Synthesise with the configured engine (library engines in a fresh child process)."""
    if v.engine == "espeak":
        return run_isolated(_synth_espeak, sent, v)
    if v.engine == "flite":
        return run_isolated(_synth_flite, sent, v)
    from .engines import festival

    return festival.synthesize(sent, v.voice, v.stretch)


def _rng(seed: int, utt: str) -> np.random.Generator:
    h = hashlib.sha256(f"{seed}:augment:{utt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "big"))


def augment_audio(x: np.ndarray, aug: Augment, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Gain and optional coloured Gaussian noise at a random SNR. ``x: (N,)`` -> ``(N,)``."""
    info: dict[str, float] = {}
    gain = float(rng.uniform(*aug.gain_db))
    y = x * (10 ** (gain / 20))
    info["gain_db"] = round(gain, 2)
    if rng.uniform() < aug.noise_prob:
        snr = float(rng.uniform(*aug.snr_db))
        white = rng.standard_normal(len(y))
        # One-pole low-pass with a random pole: from white (0) to strongly low-passed (0.95).
        a = float(rng.uniform(0.0, 0.95))
        noise = lfilter([1.0], [1.0, -a], white)
        speech_power = float(np.mean(y**2)) + 1e-12
        noise *= np.sqrt(speech_power / (np.mean(noise**2) + 1e-12) / 10 ** (snr / 10))
        y = y + noise
        info.update(snr_db=round(snr, 2), noise_pole=round(a, 3))
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.99:  # no clipping: scale down instead
        y *= 0.99 / peak
    return y.astype(np.float32), info


def _wav_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def make_utterance(job: Job) -> dict[str, Any]:
    """Make (or reuse) one utterance; returns its record (``dropped`` is a reason or None)."""
    out = Path(job.out_dir)
    rec_path = out / "work" / job.split / f"{job.utt}.json"
    wav_path = out / "wav" / job.split / f"{job.utt}.wav"
    if rec_path.is_file():
        rec = read_json(rec_path)
        if rec.get("dropped") or wav_path.is_file():
            rec["reused"] = True
            return rec
    t0 = time.monotonic()
    rec: dict[str, Any] = {
        "utt": job.utt, "split": job.split, "speaker": job.speaker,
        "text": job.sentence.transcript, "voice": asdict(job.voice), "dropped": None,
    }
    try:
        syn = synthesize(job.sentence, job.voice)
        duration = len(syn.audio) / syn.sample_rate
        reason = check_reference(syn.words, syn.phones, list(job.sentence.words), duration)
    except TimingError as e:
        reason = f"timing: {e}"
    except (RuntimeError, OSError, ValueError) as e:
        reason = f"engine error: {e}"
    if reason is not None:
        rec["dropped"] = reason
        atomic_write_json(rec_path, rec)
        return rec
    audio = resample(syn.audio.astype(np.float32), syn.sample_rate, SAMPLE_RATE)
    if job.augment.enabled:
        audio, info = augment_audio(audio, job.augment, _rng(job.seed, job.utt))
        rec["augment"] = info
    n = len(audio)
    # Resampling rounds the length; the reference must still end within the audio.
    scale_end = n / SAMPLE_RATE
    phones = [Timed(p.token, p.start, min(p.end, scale_end)) for p in syn.phones]
    phones[-1] = Timed(phones[-1].token, phones[-1].start, scale_end)
    words = [Timed(w.token, w.start, min(w.end, scale_end)) for w in syn.words]
    atomic_write_bytes(wav_path, _wav_bytes(audio))
    rec.update(
        wav=str(wav_path.resolve()), num_samples=n, duration=n / SAMPLE_RATE,
        native_rate=syn.sample_rate,
        words=[[w.token, w.start, w.end] for w in words],
        phones=[[p.token, p.start, p.end] for p in phones],
        synth_seconds=round(time.monotonic() - t0, 3),
    )
    atomic_write_json(rec_path, rec)  # written last: its presence means the wav is complete
    return rec
