"""Synthetic frame posteriors from a known state path, for decoder tests and the benchmark.

A DNN's posteriors are peaky: the right class usually wins by a wide margin, sometimes a wrong
one does, and its mistakes last several frames (neighbouring frames see almost the same input).
:func:`peaky_log_posteriors` imitates that: per frame, Gaussian logits, the true class raised by
``margin``; runs of ``run_frames`` frames on average (``confusion`` of all frames) where one
other class is raised above it.
"""

from __future__ import annotations

import numpy as np

from asrkd.decode.graph import UnitHmms


def state_path(units: list[int], hmms: UnitHmms, rng: np.random.Generator,
               mean_frames: float = 3.0, silence_unit: int | None = None,
               silence_frames: int = 0) -> np.ndarray:
    """Class id per frame for ``units`` passed through their HMMs, each state lasting
    1 + Poisson(mean_frames - 1) frames; ``silence_frames`` of silence at both ends.
    Returns ``(frames,)`` int32."""
    seq: list[int] = []
    if silence_unit is not None and silence_frames > 0:
        units = [silence_unit] + list(units) + [silence_unit]
    for i, u in enumerate(units):
        for s in range(int(hmms.num_states[u])):
            if silence_unit is not None and u == silence_unit and silence_frames > 0:
                d = max(1, silence_frames // int(hmms.num_states[u]))
            else:
                d = 1 + int(rng.poisson(max(mean_frames - 1.0, 0.0)))
            seq += [int(hmms.cls[u, s])] * d
    return np.array(seq, dtype=np.int32)


def peaky_log_posteriors(path: np.ndarray, num_classes: int, rng: np.random.Generator,
                         margin: float = 6.0, noise: float = 1.5, confusion: float = 0.1,
                         run_frames: float = 1.0) -> np.ndarray:
    """``path: (frames,)`` class ids -> ``(frames, num_classes)`` float32 log posteriors."""
    n_frames = len(path)
    logits = rng.normal(0.0, noise, size=(n_frames, num_classes)).astype(np.float32)
    rows = np.arange(n_frames)
    logits[rows, path] += margin
    # Confusion runs: start with probability confusion / run_frames per frame, geometric length.
    t = 0
    while t < n_frames:
        if rng.random() < confusion / max(run_frames, 1.0):
            n = int(rng.geometric(1.0 / max(run_frames, 1.0)))
            logits[t:t + n, int(rng.integers(0, num_classes))] += margin + 1.0
            t += n
        else:
            t += 1
    m = logits.max(axis=1, keepdims=True)
    return (logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))).astype(np.float32)
