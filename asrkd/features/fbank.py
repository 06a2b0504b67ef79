"""Log-mel filterbank features, equal to Kaldi's ``compute-fbank-feats`` (and torchaudio's
``torchaudio.compliance.kaldi.fbank``) for the same options, at dither 0.

Per frame (Kaldi's ``FeatureWindowFunction`` / ``MelBanks``), for frame ``i`` of ``L`` samples
starting at ``i*S`` (framing from :mod:`asrkd.framing`, the one frame-count function):

    x <- x * waveform_scale               (Kaldi reads 16-bit integers: scale 32768)
    x <- x - mean(x)                      (remove_dc_offset)
    e  = log(max(sum(x^2), eps))          (raw log energy, only if use_energy)
    x[j] <- x[j] - c * x[max(j-1, 0)]     (pre-emphasis, c = preemphasis)
    x <- x * w                            (window, "povey" = hann^0.85)
    P  = |rfft(x zero-padded to 2^k)|^2   (power spectrum)
    f  = log(max(M @ P, eps))             (triangular mel filters M, eps = float32 epsilon)

Speed (``tools/bench.py`` key ``feats_xrt_1core``): the mel matrix, window and sparse filter
taps are built once per config (cached); framing, DC removal, pre-emphasis and windowing are
one fused numba loop writing straight into the zero-padded FFT buffer; the FFT is scipy's
pocketfft (float32, one thread; torch's is ~0.1 s faster per 40 min of audio but importing
torch costs seconds per worker process); power spectrum, mel filtering (each FFT bin feeds at most two filters, so a
sparse loop instead of a dense ``(frames, 257) @ (257, 40)`` matmul) and log are a second numba loop.

CMVN statistics live in :mod:`asrkd.features.cmvn`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numba
import numpy as np
import scipy.fft

from asrkd.config import to_dict
from asrkd.errors import AsrkdError
from asrkd.framing import FrameSpec, num_frames

# Kaldi's floor for the power spectrum and mel energies: std::numeric_limits<float>::epsilon().
EPSILON = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class FeatureConfig:
    """Options of the log-mel filterbank (names follow Kaldi's ``compute-fbank-feats``)."""

    sample_rate: int = 16000  # Hz; audio of other rates is resampled to this on load
    num_mel_bins: int = 40  # number of triangular mel filters = feature dimension
    frame_length_ms: float = 25.0  # analysis window length, ms
    frame_shift_ms: float = 10.0  # hop between frames, ms
    snip_edges: bool = True  # Kaldi default: only frames that fit entirely in the signal
    dither: float = 0.0  # must stay 0: features are deterministic (DESIGN.md)
    preemphasis: float = 0.97  # pre-emphasis coefficient, unitless (0 = off)
    remove_dc_offset: bool = True  # subtract each frame's mean before pre-emphasis
    window: Literal["povey", "hanning", "hamming", "rectangular", "blackman"] = "povey"  # window type
    blackman_coeff: float = 0.42  # generalised Blackman window coefficient, unitless
    round_to_power_of_two: bool = True  # zero-pad each frame to the next power of two before the FFT
    low_freq: float = 20.0  # Hz, lower edge of the first mel filter
    high_freq: float = 0.0  # Hz, upper edge of the last mel filter; <= 0 means Nyquist + value
    use_energy: bool = False  # prepend the raw log energy as an extra first dimension
    energy_floor: float = 0.0  # floor on the raw energy (absolute, linear), 0 = none; only with use_energy
    waveform_scale: float = 32768.0  # samples in [-1, 1] are multiplied by this (Kaldi sees int16 values)

    def frame_spec(self) -> FrameSpec:
        return FrameSpec(self.sample_rate, self.frame_length_ms, self.frame_shift_ms, self.snip_edges)

    @property
    def dim(self) -> int:
        """Feature dimension F."""
        return self.num_mel_bins + int(self.use_energy)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the config: equal fingerprints = identical features."""
        return config_fingerprint(to_dict(self))

    def check(self) -> None:
        """Reject option values the extractor cannot honour (AsrkdError)."""
        if self.dither != 0.0:
            raise AsrkdError("feature config: dither must be 0 (asrkd features are deterministic)")
        nyq = self.sample_rate / 2
        high = self.high_freq + nyq if self.high_freq <= 0 else self.high_freq
        if not (0.0 <= self.low_freq < nyq and 0.0 < high <= nyq and self.low_freq < high):
            raise AsrkdError(
                f"feature config: need 0 <= low_freq < high_freq <= Nyquist ({nyq:g} Hz); "
                f"got low_freq={self.low_freq}, high_freq={self.high_freq} (-> {high:g})"
            )
        if self.num_mel_bins < 4:
            raise AsrkdError("feature config: num_mel_bins must be at least 4")
        spec = self.frame_spec()
        if spec.shift_samples < 1 or spec.window_samples < 2:
            raise AsrkdError("feature config: frame length/shift too small for the sample rate")


def config_fingerprint(config_dict: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a plain config dict."""
    text = json.dumps(config_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def window_function(kind: str, length: int, blackman_coeff: float = 0.42) -> np.ndarray:
    """Kaldi's ``FeatureWindowFunction``: ``(length,)`` float64 (symmetric: denominator L-1)."""
    a = 2 * np.pi / (length - 1)
    n = np.arange(length, dtype=np.float64)
    if kind == "hanning":
        return 0.5 - 0.5 * np.cos(a * n)
    if kind == "povey":
        return (0.5 - 0.5 * np.cos(a * n)) ** 0.85
    if kind == "hamming":
        return 0.54 - 0.46 * np.cos(a * n)
    if kind == "rectangular":
        return np.ones(length)
    if kind == "blackman":
        return blackman_coeff - 0.5 * np.cos(a * n) + (0.5 - blackman_coeff) * np.cos(2 * a * n)
    raise AsrkdError(f"unknown window type {kind!r}")


def _mel(f: np.ndarray | float) -> np.ndarray | float:
    return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)


def mel_banks(num_bins: int, fft_size: int, sample_rate: float, low_freq: float, high_freq: float) -> np.ndarray:
    """Kaldi's triangular mel filters (no VTLN): ``(num_bins, fft_size // 2 + 1)`` float32.

    Filter b rises from mel edge b to b+1 and falls to b+2, the ``num_bins + 2`` edges evenly
    spaced in mel between ``low_freq`` and ``high_freq``; the Nyquist bin gets weight 0, as in
    Kaldi (its filters cover ``fft_size // 2`` bins).
    """
    nyq = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyq
    lo, hi = _mel(low_freq), _mel(high_freq)
    delta = (hi - lo) / (num_bins + 1)
    b = np.arange(num_bins, dtype=np.float64)[:, None]
    left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
    mel = _mel(sample_rate / fft_size * np.arange(fft_size // 2, dtype=np.float64))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


@dataclass(frozen=True)
class _Plan:
    """Everything derived from a config once: window, FFT size, sparse mel taps."""

    L: int
    S: int
    fft_size: int
    window: np.ndarray  # (L,) float32
    tap_bin: np.ndarray  # (K,) int64 FFT bin of each non-zero mel weight
    tap_mel: np.ndarray  # (K,) int64 mel filter of each weight
    tap_w: np.ndarray  # (K,) float32 weight
    log_energy_floor: float


@lru_cache(maxsize=8)
def _plan(cfg: FeatureConfig) -> _Plan:
    cfg.check()
    spec = cfg.frame_spec()
    L, S = spec.window_samples, spec.shift_samples
    fft_size = 1 << (L - 1).bit_length() if cfg.round_to_power_of_two else L
    if fft_size % 2:
        raise AsrkdError("feature config: the FFT size must be even (use round_to_power_of_two)")
    banks = mel_banks(cfg.num_mel_bins, fft_size, cfg.sample_rate, cfg.low_freq, cfg.high_freq)
    mel_idx, bin_idx = np.nonzero(banks)
    order = np.lexsort((mel_idx, bin_idx))  # by FFT bin: sequential reads of the spectrum
    floor = float(np.log(cfg.energy_floor)) if cfg.energy_floor > 0 else -np.inf
    return _Plan(
        L=L,
        S=S,
        fft_size=fft_size,
        window=window_function(cfg.window, L, cfg.blackman_coeff).astype(np.float32),
        tap_bin=bin_idx[order].astype(np.int64),
        tap_mel=mel_idx[order].astype(np.int64),
        tap_w=banks[mel_idx[order], bin_idx[order]].astype(np.float32),
        log_energy_floor=floor,
    )


@numba.njit(cache=True, nogil=True)
def _windowed_frames(
    x: np.ndarray, S: int, scale: float, preemph: float, remove_dc: bool,
    window: np.ndarray, out: np.ndarray, log_energy: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Fill ``out (frames, fft_size)`` (zero past L) with DC-removed, pre-emphasised, windowed
    frames of ``x`` and ``log_energy (frames,)`` with the raw log energy (after DC removal)."""
    n_frames = out.shape[0]
    L = window.shape[0]
    eps = np.float32(1.1920928955078125e-07)
    for t in range(n_frames):
        base = t * S
        mean = np.float32(0.0)
        if remove_dc:
            acc = 0.0
            for j in range(L):
                acc += x[base + j]
            mean = np.float32(acc * scale / L)
        energy = 0.0
        prev = np.float32(x[base] * scale) - mean
        for j in range(L):
            v = np.float32(x[base + j] * scale) - mean
            energy += v * v
            out[t, j] = (v - np.float32(preemph) * prev) * window[j]
            prev = v
        log_energy[t] = np.log(max(energy, eps))


@numba.njit(cache=True, nogil=True)
def _log_mel(
    spec: np.ndarray, tap_bin: np.ndarray, tap_mel: np.ndarray, tap_w: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``spec (frames, 2*nbins)`` interleaved re/im float32 -> ``out (frames, M)`` log mel energies."""
    n_frames, M = out.shape
    eps = np.float32(1.1920928955078125e-07)
    acc = np.zeros(M, dtype=np.float32)
    for t in range(n_frames):
        acc[:] = 0.0
        for k in range(tap_bin.shape[0]):
            b = tap_bin[k]
            re = spec[t, 2 * b]
            im = spec[t, 2 * b + 1]
            acc[tap_mel[k]] += tap_w[k] * (re * re + im * im)
        for m in range(M):
            out[t, m] = np.log(max(acc[m], eps))


def _edge_padded(x: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """``snip_edges=False``: the signal reflected at both ends (as torchaudio's Kaldi framing
    does), so that snip-edges framing of the result gives frames centred at ``(i + 0.5) * S``."""
    pad = spec.window_samples // 2 - spec.shift_samples // 2
    rev = x[::-1]
    if pad > 0:
        return np.concatenate([rev[len(x) - pad:], x, rev])
    return np.concatenate([x[-pad:], rev])


def compute_fbank(samples: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Log-mel filterbank of ``samples: (N,)`` in [-1, 1] at ``cfg.sample_rate``.

    Returns ``feats: (frames, F)`` float32 with ``frames == num_frames(N, cfg.frame_spec())`` and
    ``F == cfg.dim`` (log energy first when ``use_energy``). Equal to
    ``torchaudio.compliance.kaldi.fbank(samples * waveform_scale, dither=0, ...)`` up to float32
    rounding (tests/test_features.py states and checks the tolerance).
    """
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise AsrkdError(f"compute_fbank expects a 1-d signal, got shape {x.shape}")
    p = _plan(cfg)
    spec = cfg.frame_spec()
    n_frames = num_frames(len(x), spec)
    feats = np.empty((n_frames, cfg.dim), dtype=np.float32)
    if n_frames == 0:
        return feats
    if not cfg.snip_edges:
        x = _edge_padded(x, spec)
    if (n_frames - 1) * p.S + p.L > len(x):  # the compiled loop does not bounds-check
        raise AsrkdError(f"signal of {len(samples)} samples is too short to frame without snip_edges")
    frames = np.zeros((n_frames, p.fft_size), dtype=np.float32)
    log_energy = np.empty(n_frames, dtype=np.float32)
    _windowed_frames(x, p.S, cfg.waveform_scale, cfg.preemphasis, cfg.remove_dc_offset, p.window, frames, log_energy)
    spectrum = scipy.fft.rfft(frames, axis=1).view(np.float32)  # (frames, 2 * (fft/2+1)) re/im pairs
    if cfg.use_energy:
        feats[:, 0] = np.maximum(log_energy, p.log_energy_floor)
        mel = np.empty((n_frames, cfg.num_mel_bins), dtype=np.float32)
        _log_mel(spectrum, p.tap_bin, p.tap_mel, p.tap_w, mel)
        feats[:, 1:] = mel
    else:
        _log_mel(spectrum, p.tap_bin, p.tap_mel, p.tap_w, feats)
    return feats
