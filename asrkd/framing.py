"""Frame counts and frame times: the one place that fixes them (DESIGN.md, "Conventions").

Kaldi's framing (feature-window.cc, ``NumFrames``): with window length ``L`` and shift ``S``
samples and ``snip_edges=true``, a signal of ``N`` samples has ``1 + (N - L) // S`` frames if
``N >= L`` and 0 otherwise; with ``snip_edges=false`` it has ``(N + S // 2) // S`` frames.
Frame ``i`` spans ``[i*S, i*S + L)`` samples, i.e. ``[10 i, 10 i + 25]`` ms at the defaults,
and its time is the window centre, ``10 i + 12.5`` ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameSpec:
    sample_rate: int = 16000  # Hz, the one rate inside asrkd
    frame_length_ms: float = 25.0  # analysis window, ms
    frame_shift_ms: float = 10.0  # hop between frames, ms
    snip_edges: bool = True  # Kaldi default: only frames that fit entirely in the signal

    @property
    def window_samples(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def shift_samples(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)


def num_frames(num_samples: int, spec: FrameSpec = FrameSpec()) -> int:
    """Number of frames of a signal of ``num_samples`` samples at ``spec.sample_rate``."""
    L, S = spec.window_samples, spec.shift_samples
    if spec.snip_edges:
        return 0 if num_samples < L else 1 + (num_samples - L) // S
    return (num_samples + S // 2) // S


def frame_time(i: "int | np.ndarray", spec: FrameSpec = FrameSpec()) -> "float | np.ndarray":
    """Centre time in seconds of frame ``i`` (window start + half a window)."""
    if spec.snip_edges:
        return (np.asarray(i) * spec.frame_shift_ms + spec.frame_length_ms / 2) / 1000.0
    return (np.asarray(i) * spec.frame_shift_ms + spec.frame_shift_ms / 2) / 1000.0


def frame_start(i: "int | np.ndarray", spec: FrameSpec = FrameSpec()) -> "float | np.ndarray":
    """Start time in seconds of frame ``i``'s window (segment boundaries use this + half shift)."""
    return np.asarray(i) * spec.frame_shift_ms / 1000.0


def time_to_frame(t: "float | np.ndarray", spec: FrameSpec = FrameSpec()) -> "np.ndarray":
    """Index of the frame whose centre is nearest to time ``t`` (seconds), not clipped."""
    centre0 = frame_time(0, spec)
    return np.rint((np.asarray(t) - centre0) * 1000.0 / spec.frame_shift_ms).astype(np.int64)


def boundary_time(i: "int | np.ndarray", spec: FrameSpec = FrameSpec()) -> "float | np.ndarray":
    """Time in seconds of the boundary between frame ``i-1`` and frame ``i``: midway between
    their centres. Alignment boundaries are scored at this time."""
    return frame_time(i, spec) - spec.frame_shift_ms / 2000.0
