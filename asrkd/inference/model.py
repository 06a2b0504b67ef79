"""Trained models for inference: a checkpoint file -> :class:`InferenceModel`.

A checkpoint is plain data (tensors, numbers, strings, lists, dicts; the layout is documented
in :mod:`asrkd.train.checkpoint`, which writes it) and is read with
``torch.load(weights_only=True)``: an untrusted file runs no code (DESIGN.md). The model is
rebuilt from the checkpoint alone: architecture, weights, and the input normalisation it was
trained with (noise floor, then CMVN).
"""

from __future__ import annotations

import functools
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.features.inputnorm import floor_from_state, normalize_input
from asrkd.fileio import sha256_file
from asrkd.inference.device import CPU, resolve_device
from asrkd.models import ModelConfig, build_model, model_config_from_dict

log = logging.getLogger("asrkd.inference.model")

FORMAT = "asrkd-checkpoint"  # the "format" entry of every checkpoint
VERSION = 1


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The plain-data dict of checkpoint ``path`` (tensors on the CPU); AsrkdError for a missing,
    unreadable or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message suggests weights_only=False: never advice to give about an untrusted file.
        raise AsrkdError(f"refused to load {path}: it holds Python objects, not only tensors and plain data "
                         "(asrkd checkpoints never do; untrusted files run no code)") from None
    except Exception as e:  # noqa: BLE001 - any other read failure is a bad file for the user
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:160]
        raise AsrkdError(f"cannot read checkpoint {path} (truncated or not a checkpoint: {first}); if it is an "
                         "interrupted run's last.pt, rerun with --force to start that run over") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise AsrkdError(f"{path} is not an asrkd checkpoint")
    return state


@dataclass
class InferenceModel:
    """A model ready for inference: module in eval mode on ``device``, its config, and the input
    normalisation it expects (noise floor ``(F,)`` or None, then the CMVN stats entry or None).

    meta: the checkpoint's fingerprints, metrics, train_config and kind."""

    module: torch.nn.Module
    config: ModelConfig
    cmvn: dict[str, Any] | None
    meta: dict[str, Any]
    path: Path
    noise_floor: np.ndarray | None = None
    device: torch.device = CPU

    @property
    def fingerprints(self) -> dict[str, Any]:
        """{"feats": ..., "lang": ...} of the data the model was trained on (entries may be absent)."""
        return dict(self.meta.get("fingerprints") or {})

    @functools.cached_property
    def sha256(self) -> str:
        """The checkpoint file's sha256 (read once, when first asked: only caches record it)."""
        return sha256_file(self.path)

    @property
    def info(self) -> dict[str, str]:
        """``{"path", "sha256"}``: how a soft-target cache names its teachers."""
        return {"path": str(self.path), "sha256": self.sha256}

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        """``feats: (frames, F)`` stored features -> ``(frames, F)`` float32 model input."""
        return normalize_input(feats, self.cmvn, self.noise_floor)


def load_model(path: Path, device: str | torch.device = CPU) -> InferenceModel:
    """Rebuild the model of checkpoint ``path`` (architecture, weights, noise floor, CMVN) on
    ``device`` (auto|cpu|cuda[:N] or a torch device), in eval mode."""
    dev = resolve_device(device)
    state = load_checkpoint(path)
    cfg = model_config_from_dict(state["model_config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    model.eval().to(dev)
    meta = {k: state.get(k) for k in ("fingerprints", "metrics", "train_config", "kind")}
    return InferenceModel(model, cfg, state.get("cmvn"), meta, Path(path),
                          floor_from_state(state.get("noise_floor")), dev)


def check_models(models: Sequence[InferenceModel], feats_fingerprint: str | None = None,
                 lang_fingerprint: str | None = None) -> tuple[int, str]:
    """The models share one label inventory (that of the data, when ``lang_fingerprint`` is
    given) and were trained on features like the data's (``feats_fingerprint``). A fingerprint
    unknown on either side is not compared. Returns (num_classes, the models' lang fingerprint or "")."""
    if not models:
        raise AsrkdError("no model given")
    sizes = {m.config.num_classes for m in models}
    if len(sizes) != 1:
        raise AsrkdError(f"the models have different numbers of classes: {sorted(sizes)}")
    langs = {m.fingerprints.get("lang") or "" for m in models}
    if len(langs) != 1:
        raise AsrkdError("the models were trained on different label inventories")
    lang = langs.pop()
    for m in models:
        if lang and lang_fingerprint and lang != lang_fingerprint:
            raise AsrkdError(f"{m.path} was trained on another label inventory than the data's labels")
        fp = m.fingerprints.get("feats")
        if fp and feats_fingerprint and fp != feats_fingerprint:
            raise AsrkdError(f"{m.path} was trained on features {fp[:12]}..., the data has "
                             f"{feats_fingerprint[:12]}... (another feature config)")
    return sizes.pop(), lang
