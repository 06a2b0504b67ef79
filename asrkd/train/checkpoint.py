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

Untrusted files run no code: nothing here unpickles objects (DESIGN.md). Reading a checkpoint
(``torch.load(weights_only=True)``) and rebuilding its model for inference live in
:mod:`asrkd.inference.model`, under training.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from asrkd.fileio import atomic_write_bytes
from asrkd.inference.model import FORMAT, VERSION


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plain data) to ``path`` atomically (temp file, fsync, rename), so a
    kill during the write leaves the previous checkpoint intact."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
