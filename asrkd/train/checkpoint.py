"""Checkpoints: plain data only, written atomically, loaded with ``weights_only=True``.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts::

    format, version, kind ("train": resumable, "model": for inference)
    model            state dict
    model_config     plain dict of asrkd.models.ModelConfig (the model is rebuilt from it)
    train_config     plain dict of asrkd.train.config.TrainConfig
    cmvn             the CMVN stats entry the model was trained with, or None
    noise_floor      the noise floor [F] applied before the CMVN (asrkd.features.inputnorm), or None/absent
    fingerprints     {"feats": ..., "lang": ...} of the training data
    metrics          per-epoch metrics so far
    (train only)     optimizer, schedule, rng, position {epoch, step}, epoch_stats, nonfinite, best

Untrusted files run no code: nothing here unpickles objects (DESIGN.md).
"""

from __future__ import annotations

import io
import pickle
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_bytes
from asrkd.features.inputnorm import floor_from_state, normalize_input
from asrkd.models import ModelConfig, build_model, model_config_from_dict

log = logging.getLogger("asrkd.train.checkpoint")

FORMAT = "asrkd-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plain data) to ``path`` atomically (temp file, fsync, rename), so a
    kill during the write leaves the previous checkpoint intact."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
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
class LoadedModel:
    """A model ready for inference: module in eval mode, its config, the input normalisation it
    expects (noise floor ``(F,)`` or None, then CMVN)."""

    module: torch.nn.Module
    config: ModelConfig
    cmvn: dict[str, Any] | None
    meta: dict[str, Any]
    path: Path
    noise_floor: np.ndarray | None = None

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        """``feats: (frames, F)`` stored features -> ``(frames, F)`` this model's input."""
        return normalize_input(feats, self.cmvn, self.noise_floor)


def load_model(path: Path) -> LoadedModel:
    """Rebuild a model from a checkpoint alone (architecture, weights, noise floor, CMVN)."""
    state = load_checkpoint(path)
    cfg = model_config_from_dict(state["model_config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    model.eval()
    meta = {k: state.get(k) for k in ("fingerprints", "metrics", "train_config", "kind")}
    return LoadedModel(model, cfg, state.get("cmvn"), meta, Path(path), floor_from_state(state.get("noise_floor")))
