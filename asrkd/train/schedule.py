"""Learning-rate schedules: halving on a dev plateau (as hybrid systems do), cosine, constant.

The schedule's whole state is plain numbers (:meth:`LRSchedule.state_dict`), saved in every
checkpoint so a resumed run continues the same curve.
"""

from __future__ import annotations

import math
from typing import Any

from asrkd.train.config import OptimConfig, ScheduleConfig


class LRSchedule:
    """``lr(step)`` for each optimiser step; :meth:`end_epoch` reacts to dev accuracy."""

    def __init__(self, cfg: ScheduleConfig, optim: OptimConfig, total_steps: int):
        self.cfg, self.base_lr, self.total_steps = cfg, optim.lr, max(1, total_steps)
        self.scale = 1.0  # plateau: product of the halvings so far
        self.best_acc = -1.0  # plateau: best dev frame accuracy seen
        self.halvings = 0

    def lr(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.cfg.warmup_steps) if self.cfg.warmup_steps > 0 else 1.0
        if self.cfg.kind == "cosine":
            frac = min(1.0, step / self.total_steps)
            lr = self.cfg.min_lr + 0.5 * (self.base_lr - self.cfg.min_lr) * (1 + math.cos(math.pi * frac))
        else:
            lr = max(self.cfg.min_lr, self.base_lr * self.scale)
        return lr * warm

    def end_epoch(self, dev_acc: float) -> bool:
        """Record an epoch's dev frame accuracy; returns True if the lr was halved."""
        halved = False
        if self.cfg.kind == "plateau" and self.best_acc >= 0 and dev_acc - self.best_acc < self.cfg.halve_threshold:
            self.scale *= 0.5
            self.halvings += 1
            halved = True
        self.best_acc = max(self.best_acc, dev_acc)
        return halved

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best_acc": self.best_acc, "halvings": self.halvings}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale, self.best_acc, self.halvings = state["scale"], state["best_acc"], state["halvings"]
