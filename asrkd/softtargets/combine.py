"""Ensemble combination of teacher logits at temperature T (Hinton et al. 2015, section 4).

Two rules, both returning a proper distribution per frame:

- ``mean``: the arithmetic mean of the members' tempered posteriors,
  ``p = 1/N sum_i softmax(z_i / T)`` (the paper's default);
- ``geometric``: the normalised geometric mean,
  ``p ∝ prod_i softmax(z_i / T)^(1/N)``, i.e. ``softmax(1/N sum_i log_softmax(z_i / T))``.

Computed in float32 whatever the teachers' dtype (bf16 autocast logits are upcast first), so the
combination itself adds no precision loss.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from asrkd.errors import AsrkdError

CombineRule = Literal["mean", "geometric"]
COMBINE_RULES: tuple[str, ...] = ("mean", "geometric")


def combine_logits(logits: Sequence[torch.Tensor], T: float, rule: str = "mean") -> torch.Tensor:
    """Combine N teachers' logits into one distribution per frame.

    logits: N tensors (..., C), same shape. Returns probs (..., C) float32, rows sum to 1.
    """
    if not logits:
        raise AsrkdError("combine: no teacher logits given")
    if T <= 0:
        raise AsrkdError(f"combine: temperature must be > 0, got {T}")
    shape = logits[0].shape
    for i, z in enumerate(logits):
        if z.shape != shape:
            raise AsrkdError(f"combine: teacher {i} gives logits {tuple(z.shape)}, teacher 0 {tuple(shape)}")
    logp = torch.stack([torch.log_softmax(z.float() / T, dim=-1) for z in logits])  # (N, ..., C)
    if rule == "mean":
        # log-mean-exp keeps tiny probabilities exact instead of underflowing each member first.
        return torch.logsumexp(logp, dim=0).sub_(torch.log(torch.tensor(float(len(logits))))).exp_()
    if rule == "geometric":
        return torch.softmax(logp.mean(dim=0), dim=-1)
    raise AsrkdError(f"combine: unknown rule {rule!r}; valid: {list(COMBINE_RULES)}")
