"""Teacher checkpoints as the cache writer's callables: raw features (frames, F) -> logits (frames, C).

Each wrapper applies what the model was trained with (its recorded noise floor and CMVN, its context window,
edges repeating the end frames as in training) and runs the frames in slices so memory stays
bounded on long utterances. Loading goes through :func:`asrkd.train.checkpoint.load_model`
(``torch.load(weights_only=True)``: a checkpoint runs no code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asrkd.features.inputnorm import normalize_input
from asrkd.errors import AsrkdError
from asrkd.fileio import sha256_file

SLICE_FRAMES = 4096  # frames per forward pass inside one utterance


@dataclass
class Teacher:
    """A loaded teacher: ``teacher(feats (frames, F)) -> logits (frames, C)``."""

    module: torch.nn.Module
    left: int
    right: int
    cmvn: dict[str, Any] | None
    num_classes: int
    fingerprints: dict[str, Any]
    info: dict[str, str]  # {"path": ..., "sha256": ...}
    noise_floor: np.ndarray | None = None  # (F,) applied before the CMVN, as in training

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        """``feats: (frames, F)`` raw features -> ``(frames, F)`` this teacher's input."""
        return normalize_input(feats, self.cmvn, self.noise_floor)

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        from asrkd.train.data import context_windows

        f = self.normalize(feats.detach().cpu().numpy())
        x = context_windows(f, self.left, self.right)  # (frames, W, F)
        out = [self.module(torch.from_numpy(x[s : s + SLICE_FRAMES])) for s in range(0, x.shape[0], SLICE_FRAMES)]
        return torch.cat(out) if out else torch.zeros(0, self.num_classes)


def load_teacher(path: Path) -> Teacher:
    from asrkd.train.checkpoint import load_model

    m = load_model(Path(path))
    cfg = m.config
    return Teacher(
        module=m.module,
        left=cfg.left_context,
        right=cfg.right_context,
        cmvn=m.cmvn,
        num_classes=cfg.num_classes,
        fingerprints=dict(m.meta.get("fingerprints") or {}),
        info={"path": str(path), "sha256": sha256_file(Path(path))},
        noise_floor=m.noise_floor,
    )


def check_teachers(teachers: list[Teacher], feature_fingerprint: str | None) -> tuple[int, str]:
    """All teachers share one label inventory, trained on these features.
    Returns (num_classes, lang fingerprint or "")."""
    if not teachers:
        raise AsrkdError("cache-targets: give at least one --model")
    sizes = {t.num_classes for t in teachers}
    if len(sizes) != 1:
        raise AsrkdError(f"cache-targets: teachers have different output sizes {sorted(sizes)}")
    langs = {t.fingerprints.get("lang") or "" for t in teachers}
    if len(langs) != 1:
        raise AsrkdError("cache-targets: teachers were trained on different label inventories")
    for t in teachers:
        fp = t.fingerprints.get("feats")
        if feature_fingerprint and fp and fp != feature_fingerprint:
            raise AsrkdError(
                f"cache-targets: {t.info['path']} was trained on features {fp[:12]}..., "
                f"the data has {feature_fingerprint[:12]}..."
            )
    return sizes.pop(), langs.pop()
