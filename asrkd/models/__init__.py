"""Acoustic models: a registry of architectures and named presets.

Models know tensors, not files. Every model takes a context window of feature frames
``(N, left + 1 + right, F)`` and returns logits ``(N, C)``; softmax, temperature and
log-probabilities belong to the losses and the evaluation. The architecture is a plain
:class:`ModelConfig`, stored in every checkpoint so a model is rebuilt from it alone
(:func:`build_model`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar

import torch

from asrkd.config import from_dict, to_dict
from asrkd.errors import AsrkdError


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "dnn"  # key of MODELS
    preset: str = ""  # name in PRESETS used as the base of this section ("" = none); informational once resolved
    left_context: int = 5  # frames of left context (input window = left + 1 + right frames)
    right_context: int = 5  # frames of right context
    feat_dim: int = 40  # feature dimension per frame (40 log-mel filterbanks)
    num_layers: int = 4  # hidden layers
    hidden_dim: int = 512  # units per hidden layer
    dropout: float = 0.0  # dropout probability after each hidden ReLU
    num_classes: int = 0  # output classes; 0 = take it from the label store
    RANGES: ClassVar[dict[str, str]] = {"left_context": "[0, inf)", "right_context": "[0, inf)", "feat_dim": "[1, inf)",
                                        "num_layers": "[0, inf)", "hidden_dim": "[1, inf)", "dropout": "[0, 1)",
                                        "num_classes": "[0, inf)"}

    @property
    def window(self) -> int:
        """Frames per input window."""
        return self.left_context + 1 + self.right_context


# Named architecture presets (field values of ModelConfig). A preset is the base of the
# ``model`` config section; YAML values and ``--set`` overrides go on top.
PRESETS: dict[str, dict[str, Any]] = {
    # Hinton, Vinyals & Dean 2015 section 4: 26 frames (20 left, 5 right) of 40 fbanks,
    # 8 x 2560 ReLU, softmax over the tied states (14,000 there; here from the label store).
    "hinton2015": dict(left_context=20, right_context=5, feat_dim=40, num_layers=8, hidden_dim=2560),
    # A model that trains in minutes on 2 CPU cores: same input window, 4 x 512.
    "cpu": dict(left_context=20, right_context=5, feat_dim=40, num_layers=4, hidden_dim=512),
    # Tests and smoke runs.
    "tiny": dict(left_context=2, right_context=2, feat_dim=40, num_layers=2, hidden_dim=32),
}


def _build_dnn(cfg: ModelConfig) -> torch.nn.Module:
    from asrkd.models.dnn import DNN

    return DNN(cfg)


MODELS: dict[str, Callable[[ModelConfig], torch.nn.Module]] = {"dnn": _build_dnn}


def apply_preset(section: dict[str, Any]) -> dict[str, Any]:
    """``section`` (a plain ``model`` mapping) with its preset's values underneath it."""
    name = section.get("preset") or ""
    if not name:
        return dict(section)
    if name not in PRESETS:
        raise AsrkdError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    return {**PRESETS[name], **section}


def build_model(cfg: ModelConfig) -> torch.nn.Module:
    """A freshly initialised model for ``cfg`` (``cfg.num_classes`` must be set)."""
    if cfg.arch not in MODELS:
        raise AsrkdError(f"unknown model arch {cfg.arch!r}; known: {sorted(MODELS)}")
    if cfg.num_classes <= 0:
        raise AsrkdError("model.num_classes is not set (it comes from the label store)")
    return MODELS[cfg.arch](cfg)


def with_num_classes(cfg: ModelConfig, num_classes: int) -> ModelConfig:
    """``cfg`` with the output size from the label inventory (refuses a conflicting value)."""
    if cfg.num_classes not in (0, num_classes):
        raise AsrkdError(f"model.num_classes={cfg.num_classes} but the labels have {num_classes} classes")
    return replace(cfg, num_classes=num_classes)


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    return from_dict(ModelConfig, data, "model")


def model_config_dict(cfg: ModelConfig) -> dict[str, Any]:
    return to_dict(cfg)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops_per_frame(cfg: ModelConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass for one frame (matmuls only)."""
    dims = [cfg.window * cfg.feat_dim] + [cfg.hidden_dim] * cfg.num_layers + [cfg.num_classes]
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))
