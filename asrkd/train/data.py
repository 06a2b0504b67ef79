"""Frame-randomised minibatches of context windows, gathered from the frame stores.

Features ``(frames, F)`` and labels ``(frames,)`` are read per utterance from their stores, CMVN is
applied once when a chunk of utterances is loaded, and each batch's context windows
``(N, left + 1 + right, F)`` are gathered with one numpy fancy index into the chunk (no
spliced copy of the corpus exists). Frames at utterance edges repeat the first/last frame.

RAM is bounded by ``chunk_bytes`` (and ``chunk_frames``): a chunk holds, per frame, the features,
the label, four int64 index entries (utterance, frame, utterance start and end) and the soft
source's arrays (:meth:`SoftSource.bytes_per_frame`: top-k or dense targets, or the online
teachers' raw features), so the chunk size in frames is ``chunk_bytes // bytes_per_frame``,
whatever the corpus size and class count. Each epoch shuffles the utterances, cuts them into
chunks of at most that many frames, and shuffles frames within a chunk; the loader holds one
chunk at a time (the last is released before the next is loaded) and counts the bytes it holds
(:attr:`FrameLoader.held_bytes`, :attr:`FrameLoader.peak_bytes`). A corpus that fits in one chunk
is loaded once and kept (frames are then shuffled across the whole corpus). Under DDP every rank
holds its own chunk: the bound is per process.

Everything is a function of (seed, epoch, step): a resumed run asks for the batches from
step ``k`` of epoch ``e`` and gets exactly the ones an uninterrupted run saw. Under DDP each
global batch of ``batch_size * world`` frames is dealt to the ranks (rank r takes every
world-th frame), so the ranks see disjoint parts of every epoch.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.features.inputnorm import normalize_input
from asrkd.framestore import FrameStore
from asrkd.inference.device import pin, to_device
from asrkd.inference.window import window_index, window_offsets
from asrkd.softtargets.formats import SoftTargets
from asrkd.train.config import DataConfig

log = logging.getLogger("asrkd.train.data")

INDEX_BYTES_PER_FRAME = 4 * 8  # Chunk.utt, frame, start, end: int64 each


@dataclass
class Batch:
    """One minibatch. ``utts``/``frames`` key every row by (utterance, frame), so any other
    per-frame source (soft targets) can be looked up for exactly these frames.

    x: (N, W, F) float32 context windows; labels: (N,) int64; utts: (N,) int64 indices into
    the loader's utterance list; frames: (N,) int64 frame index within the utterance;
    soft: soft targets for the same N frames, or None (teacher training).
    """

    x: torch.Tensor
    labels: torch.Tensor
    utts: torch.Tensor
    frames: torch.Tensor
    soft: SoftTargets | None = None

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> "Batch":
        """This batch on ``device`` (itself on the CPU; on a GPU, asynchronous copies from pinned memory)."""
        if device.type == "cpu":
            return self
        return Batch(
            to_device(self.x, device), to_device(self.labels, device),
            self.utts, self.frames, None if self.soft is None else self.soft.to(device),
        )


class SoftSource(Protocol):
    """Per-frame soft targets keyed by utterance (the distillation issue's cache)."""

    def bytes_per_frame(self) -> int:
        """Bytes a loaded chunk holds per frame (its ``nbytes`` is frames x this)."""

    def load(self, utts: list[str]) -> Any:
        """Load the targets of these utterances (a chunk, with an ``nbytes`` attribute), frames
        back to back in this order."""

    def gather(self, chunk: Any, rows: np.ndarray) -> SoftTargets:
        """Targets of chunk rows ``rows: (N,)`` (indices into the concatenated frames)."""


@dataclass
class Chunk:
    """Utterances loaded into RAM: feats (n, F) float32 (CMVN applied), labels (n,) int32,
    and per row its utterance index, frame index, and its utterance's [start, end) rows."""

    feats: np.ndarray
    labels: np.ndarray
    utt: np.ndarray
    frame: np.ndarray
    start: np.ndarray
    end: np.ndarray
    soft: Any = None

    @property
    def nbytes(self) -> int:
        """Bytes of every array held, the soft source's chunk included."""
        own = sum(a.nbytes for a in (self.feats, self.labels, self.utt, self.frame, self.start, self.end))
        return own + (0 if self.soft is None else int(self.soft.nbytes))


class FrameLoader:
    """Batches of one rank for a training set (see the module docstring).

    cmvn: one stats entry ({"count", "sum", "sumsq"}) or None for no normalisation;
    floor: noise floor (F,) applied before it, or None (asrkd.features.inputnorm);
    device: where the batches will go: for a GPU they are made in pinned memory (in the
    prefetch thread), so that :meth:`Batch.to` copies them without blocking.
    chunk_bytes, chunk_frames: the bounds of a chunk (see the module docstring); AsrkdError when
    one utterance alone does not fit.
    """

    def __init__(
        self,
        feats: FrameStore,
        labels: FrameStore,
        utts: list[str],
        left: int,
        right: int,
        batch_size: int,
        cmvn: dict[str, Any] | None,
        chunk_frames: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        prefetch: int = 2,
        soft: SoftSource | None = None,
        floor: np.ndarray | None = None,
        device: torch.device = torch.device("cpu"),
        chunk_bytes: int = DataConfig.chunk_bytes,
    ):
        self.feats, self.labels, self.utts = feats, labels, list(utts)
        self.offsets = window_offsets(left, right)
        self.batch_size, self.cmvn, self.floor, self.seed = batch_size, cmvn, floor, seed
        self.rank, self.world, self.prefetch, self.soft = rank, world, prefetch, soft
        self.device = device
        self.counts = np.array([feats.num_frames(u) for u in self.utts], dtype=np.int64)
        self.total_frames = int(self.counts.sum())
        self.chunk_bytes = int(chunk_bytes)
        self.bytes_per_frame = (4 * int(np.prod(feats.shape)) + 4 + INDEX_BYTES_PER_FRAME
                                + (0 if soft is None else int(soft.bytes_per_frame())))
        # The chunk size in frames: the tighter of the two bounds.
        self.chunk_frames = max(1, min(int(chunk_frames), self.chunk_bytes // self.bytes_per_frame))
        longest = int(self.counts.max()) if len(self.counts) else 0
        if longest > self.chunk_frames:
            raise AsrkdError(
                f"training data: an utterance of {longest} frames does not fit a chunk of {self.chunk_frames} frames "
                f"(data.chunk_bytes {self.chunk_bytes} at {self.bytes_per_frame} bytes per frame, "
                f"data.chunk_frames {chunk_frames}): raise them")
        self.in_memory = self.total_frames <= self.chunk_frames
        self.held_bytes = 0  # bytes of the chunk(s) loaded now
        self.peak_bytes = 0  # the most held at once
        self._cached: Chunk | None = None
        log.info("loader: chunks of at most %d frames (%d bytes per frame: features, label, index%s; "
                 "data.chunk_bytes %d, data.chunk_frames %d); %d frames in %s", self.chunk_frames,
                 self.bytes_per_frame, "" if soft is None else ", soft targets", self.chunk_bytes, chunk_frames,
                 self.total_frames, "one chunk, kept" if self.in_memory else "several chunks per epoch")

    # -- the plan of an epoch (cheap: permutations only, no data) --------------------------
    def chunks(self, epoch: int) -> list[np.ndarray]:
        """Utterance indices of each chunk of ``epoch``."""
        if self.in_memory:
            return [np.arange(len(self.utts))]
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.utts))
        out, cur, n = [], [], 0
        for i in order:
            if cur and n + self.counts[i] > self.chunk_frames:
                out.append(np.array(cur))
                cur, n = [], 0
            cur.append(i)
            n += int(self.counts[i])
        if cur:
            out.append(np.array(cur))
        return out

    def _global_batch(self) -> int:
        return self.batch_size * self.world

    def _steps_in_chunk(self, n: int) -> int:
        g = self._global_batch()
        full, tail = divmod(n, g)
        return full + (1 if tail >= self.world else 0)  # a tail too short to deal to every rank is dropped

    def steps_per_epoch(self, epoch: int) -> int:
        return sum(self._steps_in_chunk(int(self.counts[c].sum())) for c in self.chunks(epoch))

    # -- loading and gathering -------------------------------------------------------------
    def _hold(self, chunk: Chunk) -> Chunk:
        self.held_bytes += chunk.nbytes
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        return chunk

    def _release(self, chunk: Chunk | None) -> None:
        """Forget ``chunk`` (the caller drops its last reference); the kept corpus stays."""
        if chunk is not None and chunk is not self._cached:
            self.held_bytes -= chunk.nbytes

    def _load(self, utt_idx: np.ndarray) -> Chunk:
        if self.in_memory and self._cached is not None:
            return self._cached
        counts = self.counts[utt_idx]
        n = int(counts.sum())
        feats = np.empty((n, self.feats.shape[0]), dtype=np.float32)
        labels = np.empty(n, dtype=np.int32)
        start = np.repeat(np.cumsum(counts) - counts, counts)
        pos = 0
        for i, c in zip(utt_idx, counts):
            u = self.utts[i]
            # FrameStore.read, not the mapping: a whole-corpus pass must not leave the corpus's
            # pages in this process's resident set.
            f = self.feats.read(u).astype(np.float32, copy=False)
            feats[pos : pos + c] = normalize_input(f, self.cmvn, self.floor)
            labels[pos : pos + c] = self.labels.read(u)
            pos += c
        chunk = Chunk(
            feats=feats, labels=labels,
            utt=np.repeat(utt_idx.astype(np.int64), counts),
            frame=np.arange(n, dtype=np.int64) - start,
            start=start, end=start + np.repeat(counts, counts),
            soft=None if self.soft is None else self.soft.load([self.utts[i] for i in utt_idx]),
        )
        self._hold(chunk)
        if self.in_memory:
            self._cached = chunk
        return chunk

    def gather(self, chunk: Chunk, rows: np.ndarray) -> Batch:
        """The batch of chunk rows ``rows: (N,)`` (in pinned memory when bound for a GPU)."""
        idx = window_index(rows, chunk.start[rows], chunk.end[rows], self.offsets)

        def pinned(t: torch.Tensor) -> torch.Tensor:
            return pin(t, self.device)

        return Batch(
            x=pinned(torch.from_numpy(chunk.feats[idx])),
            labels=pinned(torch.from_numpy(chunk.labels[rows].astype(np.int64))),
            utts=torch.from_numpy(chunk.utt[rows]),
            frames=torch.from_numpy(chunk.frame[rows]),
            soft=None if self.soft is None else self.soft.gather(chunk.soft, rows).apply(pinned),
        )

    def _rows(self, epoch: int, start_step: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(chunk number, its utterance indices, this rank's rows) of every step from ``start_step``."""
        g = self._global_batch()
        step = 0
        for ci, utt_idx in enumerate(self.chunks(epoch)):
            n = int(self.counts[utt_idx].sum())
            steps = self._steps_in_chunk(n)
            if step + steps <= start_step:
                step += steps  # skipped without loading or shuffling
                continue
            perm = np.random.default_rng([self.seed, epoch, ci]).permutation(n)
            for s in range(steps):
                if step >= start_step:
                    yield ci, utt_idx, perm[s * g : (s + 1) * g][self.rank :: self.world]
                step += 1

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """This rank's batches of ``epoch`` from step ``start_step`` (gathered ahead by a
        background thread when ``prefetch`` > 0, so the step rarely waits for data)."""

        def produce() -> Iterator[Batch]:
            ci_loaded, chunk = -1, None
            try:
                for ci, utt_idx, rows in self._rows(epoch, start_step):
                    if ci != ci_loaded:
                        # Released before the next is loaded: never two chunks at once.
                        self._release(chunk)
                        ci_loaded, chunk = ci, None
                        chunk = self._load(utt_idx)
                    yield self.gather(chunk, rows)  # copies: a batch holds no view of the chunk
            finally:
                self._release(chunk)

        if self.prefetch <= 0:
            yield from produce()
            return
        yield from _background(produce(), self.prefetch)


_END = object()


def _background(it: Iterator[Batch], depth: int) -> Iterator[Batch]:
    """Run ``it`` in a daemon thread, ``depth`` items ahead; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, name="asrkd-loader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def eval_batches(
    feats: FrameStore, labels: FrameStore, utts: list[str], left: int, right: int,
    batch_size: int, cmvn: dict[str, Any] | None, floor: np.ndarray | None = None,
) -> Iterator[Batch]:
    """Every frame of ``utts`` in order (no shuffling), batched, for dev/test metrics
    (normalised as :class:`FrameLoader` does: ``floor (F,)`` then ``cmvn``)."""
    offsets = window_offsets(left, right)
    for i, u in enumerate(utts):
        f = np.asarray(feats[u], dtype=np.float32)
        f = normalize_input(f, cmvn, floor)
        y = np.asarray(labels[u]).astype(np.int64)
        n_frames = f.shape[0]
        for s in range(0, n_frames, batch_size):
            rows = np.arange(s, min(n_frames, s + batch_size), dtype=np.int64)
            idx = window_index(rows, np.zeros_like(rows), np.full_like(rows, n_frames), offsets)
            yield Batch(torch.from_numpy(f[idx]), torch.from_numpy(y[rows]),
                        torch.full((len(rows),), i, dtype=torch.int64), torch.from_numpy(rows))
