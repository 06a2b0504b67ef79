"""Storage formats of soft targets (one frame store per array, see :mod:`asrkd.softtargets.cache`).

``topk`` (large inventories): per frame the k most probable class ids (int16 when the inventory
has at most 32767 classes, else int32), their probabilities as fp16, and the leftover *tail mass*
``1 - sum(top-k)`` as fp32 (summed from the exact fp32 probabilities of the other classes, so a
tiny tail keeps its precision). Ids are in descending probability order, ties broken by the lower
class id, so encoding is deterministic. Bytes per frame: ``k * (id bytes + 2) + 4``
(k=20, 2000 classes: 84 bytes, against 8000 for dense fp32).

``dense`` (small inventories): the whole distribution as fp16, ``2 * C`` bytes per frame.

Which of the two a cache uses (``auto``: by the inventory's size) is
:mod:`asrkd.softtargets.choice`.

How the loss treats the tail is documented in :mod:`asrkd.train.loss`.
:class:`SoftTargets` is the in-memory form of a batch's targets, decoded from either format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.inference.device import to_device
from asrkd.softtargets.choice import FORMATS

@dataclass
class SoftTargets:
    """Soft targets for the frames of a batch, aligned with the batch's logits.

    probs: (..., K) top-k probabilities (with ``ids``) or (..., C) dense distribution.
    ids:   (..., K) int64 class ids of ``probs``, or None for dense targets.
    tail:  (...,) leftover mass outside the top-k, or None for dense targets.
    """

    probs: torch.Tensor
    ids: torch.Tensor | None = None
    tail: torch.Tensor | None = None

    @property
    def is_dense(self) -> bool:
        return self.ids is None

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "SoftTargets":
        """``fn`` applied to each of the arrays present."""
        return SoftTargets(fn(self.probs), None if self.ids is None else fn(self.ids),
                           None if self.tail is None else fn(self.tail))

    def to(self, device: torch.device | str) -> "SoftTargets":
        """On ``device`` (on a GPU: asynchronous copies from pinned memory, asrkd.inference.device)."""
        dev = torch.device(device)
        return self.apply(lambda t: to_device(t, dev))

    def select(self, index: torch.Tensor) -> "SoftTargets":
        """The rows picked by a boolean mask or index over the leading dims."""
        return self.apply(lambda t: t[index])


DEFAULT_K = 20


def id_dtype(num_classes: int) -> np.dtype:
    """Smallest signed integer dtype holding every class id of the inventory."""
    return np.dtype(np.int16) if num_classes <= np.iinfo(np.int16).max else np.dtype(np.int32)


@dataclass(frozen=True)
class TargetFormat:
    """What is stored per frame. ``k`` is only meaningful for ``topk``."""

    name: str  # "topk" | "dense"
    num_classes: int
    k: int = DEFAULT_K

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise AsrkdError(f"unknown soft-target format {self.name!r}; valid: {list(FORMATS)}")
        if self.num_classes < 1:
            raise AsrkdError(f"soft targets: num_classes must be >= 1, got {self.num_classes}")
        if self.name == "topk" and not 1 <= self.k <= self.num_classes:
            raise AsrkdError(f"soft targets: k={self.k} must be in [1, num_classes={self.num_classes}]")

    def arrays(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """{array name: (dtype, row shape)}; each array is one frame store of the cache."""
        if self.name == "dense":
            return {"probs": (np.dtype(np.float16), (self.num_classes,))}
        return {
            "ids": (id_dtype(self.num_classes), (self.k,)),
            "probs": (np.dtype(np.float16), (self.k,)),
            "tail": (np.dtype(np.float32), ()),
        }

    def bytes_per_frame(self) -> int:
        return sum(dt.itemsize * int(np.prod(shape, dtype=np.int64)) for dt, shape in self.arrays().values())


def dense_fp32_bytes_per_frame(num_classes: int) -> int:
    return 4 * num_classes


def encode(probs: torch.Tensor, fmt: TargetFormat) -> dict[str, np.ndarray]:
    """Compress combined probabilities for storage.

    probs: (frames, C) float32, rows sum to 1. Returns {array name: (frames, *row shape)} numpy arrays of
    the dtypes of ``fmt.arrays()``.
    """
    if probs.dim() != 2 or probs.shape[1] != fmt.num_classes:
        raise AsrkdError(f"soft targets: probs {tuple(probs.shape)} do not fit (frames, {fmt.num_classes})")
    probs = probs.detach().float().cpu()
    if fmt.name == "dense":
        return {"probs": probs.numpy().astype(np.float16)}
    from asrkd.softtargets.topk import top_k_stable  # numba: imported where a cache is written

    threads = torch.get_num_threads()
    top_p, ids, tail = top_k_stable(probs.numpy(), fmt.k, threads)
    # numba's OpenMP layer sets the process's OpenMP thread count on its first launch, which is
    # torch's too: restored, so that a job's teachers keep the thread count it chose.
    torch.set_num_threads(threads)
    return {
        "ids": ids.astype(id_dtype(fmt.num_classes)),
        "probs": top_p.astype(np.float16),
        "tail": tail.astype(np.float32),
    }


def encode_torch(probs: torch.Tensor, fmt: TargetFormat) -> dict[str, torch.Tensor]:
    """Like :func:`encode` but keeps float32 values and stays in torch (the online reference)."""
    if fmt.name == "dense":
        return {"probs": probs.float()}
    sorted_p, order = torch.sort(probs.float(), dim=-1, descending=True, stable=True)
    return {"ids": order[..., : fmt.k], "probs": sorted_p[..., : fmt.k], "tail": sorted_p[..., fmt.k :].sum(-1)}


def decode_dense(arrays: dict[str, np.ndarray], fmt: TargetFormat) -> np.ndarray:
    """Expand stored arrays to (frames, C) float32 for inspection; the tail is spread uniformly over
    the non-top-k classes here (display only: the loss never assumes a tail shape)."""
    if fmt.name == "dense":
        return np.asarray(arrays["probs"], dtype=np.float32)
    ids = np.asarray(arrays["ids"]).astype(np.int64)
    p = np.asarray(arrays["probs"], dtype=np.float32)
    tail = np.asarray(arrays["tail"], dtype=np.float32)
    rest = fmt.num_classes - fmt.k
    out = np.zeros((ids.shape[0], fmt.num_classes), dtype=np.float32)
    if rest > 0:
        out += (tail / rest)[:, None]
    np.put_along_axis(out, ids, p, axis=1)
    return out
