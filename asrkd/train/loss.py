"""The training objective, separate from the model and the loop: ``loss(logits, batch)``.

Teachers: soft-target weight 0, i.e. frame cross-entropy on the hard labels. Students add soft
targets to the batch (``batch.soft``) and a weight a > 0:
``(1 - a) * CE(hard) + a * T^2 * CE(soft at T)`` (:func:`asrkd.kd_loss.kd_loss`).
"""

from __future__ import annotations

import torch

from asrkd.kd_loss import KDLoss, kd_loss
from asrkd.train.config import LossConfig
from asrkd.train.data import Batch


def training_loss(logits: torch.Tensor, batch: Batch, cfg: LossConfig) -> KDLoss:
    """``logits: (N, C)`` of ``batch`` -> the loss (``.total`` to backpropagate)."""
    return kd_loss(logits, batch.labels, batch.soft, cfg.soft_weight, cfg.temperature)
