"""Soft-target sources for the training loop: the cache (normal use) and online teachers (the
reference for correctness and speed).

The loop holds a chunk of utterances in RAM and draws batches of frames from it; the cached
source loads the same utterances' targets in the same order (:meth:`CachedSource.load_chunk`),
so a batch's soft targets are a row gather with the batch's frame indices, keyed by utterance
and frame, never by batch number. Before training, :func:`check_compatible` refuses a cache
whose temperature, features, label inventory or frame counts differ from the run's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from asrkd.data.labelled import open_labelled_frames
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.inference.device import CPU, autocast, resolve_precision
from asrkd.inference.ensemble import combine_logits
from asrkd.inference.forward import rows_logits
from asrkd.inference.model import InferenceModel, check_models, load_model
from asrkd.softtargets.cache import SoftTargetCache
from asrkd.softtargets.formats import SoftTargets, TargetFormat, encode_torch


def check_compatible(
    cache: SoftTargetCache,
    *,
    T: float,
    feature_fingerprint: str | None,
    num_classes: int,
    lang_fingerprint: str | None,
    frame_counts: dict[str, int],
) -> None:
    """Raise AsrkdError listing every way ``cache`` does not fit the training run.

    frame_counts: {utt: frames} of the utterances training will use (each must be cached, same T).
    A fingerprint of None is not checked (unknown on the training side).
    """
    meta = cache.meta
    problems = []
    if abs(float(meta["T"]) - float(T)) > 1e-9:
        problems.append(f"temperature: cache T={meta['T']}, training T={T}")
    fp = meta["features"]["fingerprint"]
    if feature_fingerprint is not None and fp != feature_fingerprint:
        problems.append(f"features: cache fingerprint {fp[:12]}..., training {feature_fingerprint[:12]}...")
    inv = meta["label_inventory"]
    if int(inv["num_classes"]) != int(num_classes):
        problems.append(f"labels: cache has {inv['num_classes']} classes, training {num_classes}")
    if lang_fingerprint is not None and inv["fingerprint"] and inv["fingerprint"] != lang_fingerprint:
        problems.append(f"labels: cache inventory {inv['fingerprint'][:12]}..., training {lang_fingerprint[:12]}...")
    cached = cache.frame_counts()
    missing = sorted(u for u in frame_counts if u not in cached)
    if missing:
        problems.append(f"frame counts: {len(missing)} training utterance(s) not in the cache, e.g. {missing[:3]}")
    bad = sorted(u for u in frame_counts if u in cached and cached[u] != frame_counts[u])
    if bad:
        sample = ", ".join(f"{u}: {cached[u]} vs {frame_counts[u]}" for u in bad[:3])
        problems.append(f"frame counts: {len(bad)} utterance(s) differ (cache vs training): {sample}")
    if problems:
        raise AsrkdError(f"soft-target cache {cache.directory} does not fit this training run:\n  " + "\n  ".join(problems))


@dataclass
class ChunkTargets:
    """Soft targets of a chunk of utterances, concatenated in the chunk's order (in RAM).

    arrays: {name: (frames, *row shape)} numpy, as stored (fp16 probabilities)."""

    arrays: dict[str, np.ndarray]
    format: TargetFormat

    @property
    def num_frames(self) -> int:
        return next(iter(self.arrays.values())).shape[0]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    def take(self, index: np.ndarray | torch.Tensor) -> SoftTargets:
        """Rows ``index`` (B,) of the chunk -> SoftTargets with probs (B, K|C)."""
        idx = index.numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        a = self.arrays
        probs = torch.from_numpy(a["probs"][idx])
        if self.format.name == "dense":
            return SoftTargets(probs)
        return SoftTargets(probs, torch.from_numpy(a["ids"][idx].astype(np.int64)), torch.from_numpy(a["tail"][idx]))


class CachedSource:
    """Reads a soft-target cache for the training loop."""

    def __init__(self, cache: SoftTargetCache):
        self.cache = cache
        self.format = cache.target_format
        self.T = cache.T

    def bytes_per_frame(self) -> int:
        """What a loaded chunk holds per frame: the stored arrays (fp16 probabilities, ids, tail)."""
        return self.format.bytes_per_frame()

    def load_chunk(self, utts: Sequence[str], frame_counts: Sequence[int] | None = None) -> ChunkTargets:
        """Concatenate the targets of ``utts`` in that order. frame_counts (optional): the
        chunk's frames per utterance, checked (a mismatch raises AsrkdError)."""
        out = {}
        for a, store in self.cache.stores.items():
            rows = [store.num_frames(u) for u in utts]
            if frame_counts is not None:
                for u, r, n in zip(utts, rows, frame_counts):
                    if r != n:
                        raise AsrkdError(f"soft-target cache: {u} has {r} frames, the batch source {n}")
            # Read straight into the chunk's array (no per-utterance copies to concatenate, no
            # mapped pages left in the resident set: FrameStore.read).
            arr = np.empty((sum(rows), *store.shape), dtype=store.dtype)
            pos = 0
            for u, r in zip(utts, rows):
                store.read(u, arr[pos : pos + r])
                pos += r
            out[a] = arr
        return ChunkTargets(out, self.format)

    # asrkd.train.data.SoftSource protocol: load a chunk's utterances, gather a batch's rows.
    def load(self, utts: list[str]) -> ChunkTargets:
        return self.load_chunk(utts)

    def gather(self, chunk: ChunkTargets, rows: np.ndarray) -> SoftTargets:
        return chunk.take(rows)

    def utterance(self, utt: str) -> SoftTargets:
        """Targets of one whole utterance (frames, ...)."""
        chunk = self.load_chunk([utt])
        return chunk.take(np.arange(chunk.num_frames))


def open_cached_source(
    cache_dir: Path,
    *,
    T: float,
    feats: FrameStore,
    labels: FrameStore,
    utts: Sequence[str],
) -> CachedSource:
    """The training run's cached source: opens ``cache_dir`` and refuses it (AsrkdError) when
    its temperature, feature fingerprint, label inventory or frame counts differ from the
    run's feature and label stores over the training utterances ``utts``."""
    cache = SoftTargetCache(cache_dir)
    check_compatible(
        cache,
        T=T,
        feature_fingerprint=feats.attrs.get("fingerprint"),
        num_classes=int(labels.attrs["num_classes"]),
        lang_fingerprint=labels.attrs.get("lang_fingerprint"),
        frame_counts={u: feats.num_frames(u) for u in utts},
    )
    return CachedSource(cache)


class OnlineSource:
    """Teachers run inside the loop on the same batch input (the reference for the cache).

    teachers: models ``x (B, ...) -> logits (B, C)`` taking the student's batch input;
    fmt: None for the dense combined distribution (fp32), or a top-k format to coarsen the
    targets exactly as the cache does (but without fp16 rounding); precision: auto|bf16|fp16|fp32."""

    def __init__(self, teachers: Sequence[Callable[[torch.Tensor], torch.Tensor]], T: float,
                 combine: str = "mean", fmt: TargetFormat | None = None, precision: str = "fp32"):
        self.teachers = list(teachers)
        self.T = T
        self.combine = combine
        self.format = fmt
        self.precision = precision

    def __call__(self, x: torch.Tensor) -> SoftTargets:
        with torch.inference_mode(), autocast(resolve_precision(self.precision, x.device), x.device):
            logits = [t(x).float() for t in self.teachers]
        return online_targets(logits, self.T, self.combine, self.format)


def online_targets(logits: Sequence[torch.Tensor], T: float, combine: str, fmt: TargetFormat | None) -> SoftTargets:
    """N teachers' logits (B, C) -> combined targets (dense fp32, or top-k coarsened)."""
    with torch.inference_mode():
        probs = combine_logits(logits, T, combine)
        arrays = {"probs": probs} if fmt is None or fmt.name == "dense" else encode_torch(probs, fmt)
    # Clones made outside inference mode: the loss may save them for backward.
    a = {k: v.clone() for k, v in arrays.items()}
    return SoftTargets(a["probs"], a.get("ids"), a.get("tail"))


@dataclass
class _OnlineChunk:
    feats: np.ndarray  # (n, F) raw features of the chunk's utterances, back to back
    start: np.ndarray  # (n,) first row of each row's utterance
    end: np.ndarray  # (n,) one past its last row

    @property
    def nbytes(self) -> int:
        return self.feats.nbytes + self.start.nbytes + self.end.nbytes


class OnlineTeacherSource:
    """The online reference as a loader soft source (asrkd.train.data.SoftSource protocol):
    the teachers run on each batch's frames when the batch is gathered, on the same context
    windows (each teacher's own window and CMVN, as in the cache), nothing stored.

    teachers: loaded models (asrkd.inference.model.load_model); fmt: None = dense fp32
    targets, or a top-k format (coarsened exactly as the cache, without fp16 rounding);
    precision: auto|bf16|fp16|fp32 of the teachers' forward (asrkd.inference.forward.rows_logits)."""

    def __init__(self, teachers: Sequence[InferenceModel], feats: FrameStore, T: float, combine: str = "mean",
                 fmt: TargetFormat | None = None, precision: str = "fp32"):
        self.teachers = list(teachers)
        self.feats = feats
        self.T, self.combine, self.format, self.precision = T, combine, fmt, precision

    def bytes_per_frame(self) -> int:
        """A chunk's raw float32 features and int64 utterance bounds, per frame."""
        return 4 * int(np.prod(self.feats.shape)) + 2 * 8

    def load(self, utts: list[str]) -> _OnlineChunk:
        parts = [self.feats.read(u).astype(np.float32, copy=False) for u in utts]
        counts = np.array([p.shape[0] for p in parts], dtype=np.int64)
        start = np.repeat(np.cumsum(counts) - counts, counts)
        return _OnlineChunk(np.concatenate(parts), start, start + np.repeat(counts, counts))

    def gather(self, chunk: _OnlineChunk, rows: np.ndarray) -> SoftTargets:
        logits = [rows_logits(t, chunk.feats, rows, chunk.start[rows], chunk.end[rows], self.precision)
                  for t in self.teachers]
        return online_targets(logits, self.T, self.combine, self.format)


def training_soft_source(
    feats_dir: Path,
    labels_dir: Path,
    T: float,
    cache: Path | None = None,
    teachers: Sequence[str] = (),
    combine: str = "mean",
    device: torch.device = CPU,
) -> CachedSource | OnlineTeacherSource:
    """The soft source of ``asrkd train``: a cache (checked against the run's features, labels,
    frame counts and T) or, with teacher checkpoints, the online reference (dense targets; the
    teachers run on ``device``)."""
    if (cache is None) == (not teachers):
        raise AsrkdError("give either a soft-target cache or online teachers, not both or neither")
    feats, labels, utts = open_labelled_frames(Path(feats_dir), Path(labels_dir))
    if cache is not None:
        return open_cached_source(Path(cache), T=T, feats=feats, labels=labels, utts=utts)
    loaded = [load_model(Path(p), device) for p in teachers]
    num_classes, _ = check_models(loaded, feats.attrs.get("fingerprint"), labels.attrs.get("lang_fingerprint"))
    if num_classes != int(labels.attrs["num_classes"]):
        raise AsrkdError(f"online teachers' label inventory differs from {labels_dir}")
    return OnlineTeacherSource(loaded, feats, T, combine)
