"""Cepstral mean and variance normalisation (CMVN) statistics, global and per speaker.

``data/<set>/cmvn.json`` (the on-disk contract)::

    {"global": {"count": N, "sum": [F], "sumsq": [F]},
     "speakers": {spk: {"count": N, "sum": [F], "sumsq": [F]}, ...}}

``count`` is the number of frames, ``sum``/``sumsq`` the per-dimension sums of the features and
of their squares (float64 sums, so a large corpus loses no precision). Normalising with them:
``(x - mean) / std`` with ``mean = sum / count`` and ``std = sqrt(max(sumsq / count - mean^2,
floor))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, read_json

CMVN_FILE = "cmvn.json"
VAR_FLOOR = 1e-10  # floor on the variance, so constant dimensions do not divide by zero


class CmvnAccumulator:
    """Accumulates frame statistics of ``(frames, F)`` feature arrays, globally and per speaker."""

    def __init__(self, dim: int):
        self.dim = dim
        self.speakers: dict[str, list[Any]] = {}  # spk -> [count, sum (F,), sumsq (F,)]

    def add(self, speaker: str, feats: np.ndarray) -> None:
        """Add ``feats: (frames, F)`` of one utterance of ``speaker``."""
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"feats must be (frames, {self.dim}), got {feats.shape}")
        f = feats.astype(np.float64)
        s = self.speakers.setdefault(speaker, [0, np.zeros(self.dim), np.zeros(self.dim)])
        s[0] += f.shape[0]
        s[1] += f.sum(axis=0)
        s[2] += np.einsum("tf,tf->f", f, f)

    def merge(self, other: "CmvnAccumulator") -> None:
        for spk, (n, s1, s2) in other.speakers.items():
            mine = self.speakers.setdefault(spk, [0, np.zeros(self.dim), np.zeros(self.dim)])
            mine[0] += n
            mine[1] += s1
            mine[2] += s2

    def to_json(self) -> dict[str, Any]:
        """The ``cmvn.json`` mapping: global stats are the sum over speakers."""

        def entry(n: int, s1: np.ndarray, s2: np.ndarray) -> dict[str, Any]:
            return {"count": int(n), "sum": [float(v) for v in s1], "sumsq": [float(v) for v in s2]}

        total = [0, np.zeros(self.dim), np.zeros(self.dim)]
        for n, s1, s2 in self.speakers.values():
            total[0] += n
            total[1] = total[1] + s1
            total[2] = total[2] + s2
        return {
            "global": entry(*total),
            "speakers": {spk: entry(*self.speakers[spk]) for spk in sorted(self.speakers)},
        }


def write_cmvn(data_dir: Path, stats: dict[str, Any]) -> None:
    atomic_write_json(Path(data_dir) / CMVN_FILE, stats)


def load_cmvn(data_dir: Path) -> dict[str, Any]:
    """Read ``data_dir/cmvn.json`` (written by ``asrkd compute-feats``)."""
    path = Path(data_dir) / CMVN_FILE
    if not path.is_file():
        raise AsrkdError(f"no CMVN statistics at {path}; run `asrkd compute-feats {data_dir}` first")
    stats = read_json(path)
    if "global" not in stats or "speakers" not in stats:
        raise AsrkdError(f"{path}: not a CMVN statistics file (needs 'global' and 'speakers')")
    return stats


def mean_std(stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``{"count", "sum", "sumsq"}`` -> ``(mean (F,), std (F,))`` float64."""
    n = stats["count"]
    if n <= 0:
        raise AsrkdError("CMVN statistics have no frames")
    mean = np.asarray(stats["sum"], dtype=np.float64) / n
    var = np.asarray(stats["sumsq"], dtype=np.float64) / n - mean**2
    return mean, np.sqrt(np.maximum(var, VAR_FLOOR))


def apply_cmvn(feats: np.ndarray, stats: dict[str, Any], variance: bool = True) -> np.ndarray:
    """Normalise ``feats: (frames, F)`` with one stats entry (``cmvn["global"]`` or a speaker's).

    Returns ``(frames, F)`` float32: ``feats - mean``, divided by ``std`` if ``variance``.
    """
    if "count" not in stats:
        raise AsrkdError("apply_cmvn expects one entry (e.g. cmvn['global']), not the whole file")
    mean, std = mean_std(stats)
    if feats.ndim != 2 or feats.shape[1] != mean.shape[0]:
        raise AsrkdError(f"CMVN dimension {mean.shape[0]} does not match features {feats.shape}")
    out = feats - mean.astype(np.float32)
    if variance:
        out = out / std.astype(np.float32)
    return out.astype(np.float32, copy=False)
