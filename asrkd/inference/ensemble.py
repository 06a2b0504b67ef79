"""Ensemble combination (Hinton et al. 2015, section 4): N members' outputs -> one distribution.

Two rules, both returning a proper distribution per frame, at a temperature T:

- ``mean``: the arithmetic mean of the members' tempered posteriors,
  ``p = 1/N sum_i softmax(z_i / T)`` (the paper's default);
- ``geometric``: the normalised geometric mean,
  ``p ∝ prod_i softmax(z_i / T)^(1/N)``, i.e. ``softmax(1/N sum_i log_softmax(z_i / T))``.

The soft-target cache combines teacher logits at its T; evaluation and decoding combine the
members' log-posteriors at T = 1 (log-posteriors are valid logits). Computed in float32 whatever
the members' dtype (bf16 autocast logits are upcast first), so the combination adds no
precision loss.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.inference.export import ExportedModel
from asrkd.inference.forward import frame_log_posteriors
from asrkd.inference.model import InferenceModel
from asrkd.inference.spec import COMBINE_RULES, CombineRule



def combine_logits(logits: Sequence[torch.Tensor], T: float, rule: str = "mean") -> torch.Tensor:
    """Combine N members' logits into one distribution per frame.

    logits: N tensors (..., C), same shape. Returns probs (..., C) float32, rows sum to 1.
    """
    if not logits:
        raise AsrkdError("combine: no member logits given")
    if T <= 0:
        raise AsrkdError(f"combine: temperature must be > 0, got {T}")
    shape = logits[0].shape
    for i, z in enumerate(logits):
        if z.shape != shape:
            raise AsrkdError(f"combine: member {i} gives logits {tuple(z.shape)}, member 0 {tuple(shape)}")
    if rule == "mean":
        # The members' tempered softmaxes summed in place: no (N, frames, C) stack. Each member's
        # probabilities are exact to float32 rounding down to ~1e-38, where the mean itself
        # underflows whichever way it is computed.
        p = torch.softmax(logits[0].float() / T, dim=-1)
        for z in logits[1:]:
            p.add_(torch.softmax(z.float() / T, dim=-1))
        return p.div_(len(logits))
    if rule == "geometric":
        logp = torch.stack([torch.log_softmax(z.float() / T, dim=-1) for z in logits])  # (N, ..., C)
        return torch.softmax(logp.mean(dim=0), dim=-1)
    raise AsrkdError(f"combine: unknown rule {rule!r}; valid: {list(COMBINE_RULES)}")


def combine_posteriors(log_posts: Sequence[torch.Tensor], rule: str = "mean") -> torch.Tensor:
    """Members' ``(frames, C)`` log-posteriors -> the ensemble's ``(frames, C)`` posteriors (T = 1)."""
    return combine_logits(list(log_posts), 1.0, rule)


def member_log_posteriors(models: Sequence[InferenceModel | ExportedModel], feats: np.ndarray,
                          precision: str = "auto") -> list[torch.Tensor]:
    """``feats: (frames, F)`` raw features of one utterance -> per model ``(frames, C)`` log-posteriors
    (an exported model runs its own fp32 graph: ``precision`` applies to checkpoints)."""
    return [torch.from_numpy(m(feats)) if isinstance(m, ExportedModel) else frame_log_posteriors(m, feats, precision)
            for m in models]


def ensemble_posteriors(models: Sequence[InferenceModel], feats: np.ndarray, rule: str = "mean",
                        precision: str = "auto") -> np.ndarray:
    """``feats: (frames, F)`` raw features -> ``(frames, C)`` float32 posteriors of the model or ensemble."""
    return combine_posteriors(member_log_posteriors(models, feats, precision), rule).numpy()
