"""The one forward over frames: raw stored features -> the model's logits.

Every model input is made the same way: the model's own noise floor and CMVN
(:meth:`InferenceModel.normalize`), its own context window (:mod:`asrkd.inference.window`),
then the network under autocast at the resolved precision, without autograd. Two entry points
share that core:

- :func:`frame_logits`: every frame of one utterance, ``batch_frames`` frames per forward pass
  (memory stays bounded on long utterances): evaluation, decoding, the soft-target cache;
- :func:`rows_logits`: chosen frames of utterances held back to back (a training chunk): the
  online teachers that run inside the training loop.

Results are float32 on the CPU whatever the device (GPU batches are copied there from pinned
memory without blocking, see :mod:`asrkd.inference.device`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asrkd.inference.device import autocast, resolve_precision, to_device
from asrkd.inference.model import InferenceModel
from asrkd.inference.window import context_windows, window_index, window_offsets

BATCH_FRAMES = 4096  # frames per forward pass inside one utterance


def _forward(model: InferenceModel, x: torch.Tensor) -> torch.Tensor:
    """``x: (N, W, F)`` normalised host windows -> ``(N, C)`` float32 logits on the model's device.
    Call under ``torch.inference_mode()`` and the precision's autocast."""
    return model.module(to_device(x, model.device)).float()


def frame_logits(model: InferenceModel, feats: np.ndarray, precision: str = "fp32",
                 batch_frames: int = BATCH_FRAMES) -> torch.Tensor:
    """``feats: (frames, F)`` raw features of one utterance -> ``(frames, C)`` float32 logits (CPU).
    ``precision``: auto|bf16|fp16|fp32 (auto resolved for the model's device)."""
    prec = resolve_precision(precision, model.device)
    cfg = model.config
    x = context_windows(model.normalize(feats), cfg.left_context, cfg.right_context)  # (frames, W, F)
    with torch.inference_mode(), autocast(prec, model.device):
        parts = [_forward(model, torch.from_numpy(x[s : s + batch_frames]))
                 for s in range(0, x.shape[0], batch_frames)]
    if not parts:
        return torch.zeros(0, cfg.num_classes)
    return torch.cat(parts).cpu()


def frame_log_posteriors(model: InferenceModel, feats: np.ndarray, precision: str = "fp32",
                         batch_frames: int = BATCH_FRAMES) -> torch.Tensor:
    """``feats: (frames, F)`` raw features -> ``(frames, C)`` float32 log-posteriors (log-softmax of the logits)."""
    return torch.log_softmax(frame_logits(model, feats, precision, batch_frames), dim=-1)


def rows_logits(model: InferenceModel, feats: np.ndarray, rows: np.ndarray, start: np.ndarray,
                end: np.ndarray, precision: str = "fp32") -> torch.Tensor:
    """Logits ``(N, C)`` float32 (CPU) of the frames ``rows: (N,)`` of ``feats: (n, F)``, raw
    features of utterances back to back; ``start/end: (N,)`` are the first and one-past-last
    rows of each row's utterance (the window does not cross utterances). One forward pass."""
    prec = resolve_precision(precision, model.device)
    offsets = window_offsets(model.config.left_context, model.config.right_context)
    w = feats[window_index(rows, start, end, offsets)]  # (N, W, F)
    x = torch.from_numpy(model.normalize(w.reshape(-1, w.shape[-1])).reshape(w.shape))
    with torch.inference_mode(), autocast(prec, model.device):
        return _forward(model, x).cpu()


@dataclass
class Scorer:
    """``model`` at ``precision`` as a plain callable ``feats (frames, F) tensor -> logits (frames, C)``
    (the soft-target cache writer's teacher, which knows no models)."""

    model: InferenceModel
    precision: str = "fp32"

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        return frame_logits(self.model, feats.detach().cpu().numpy(), self.precision)
