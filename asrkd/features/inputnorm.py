"""A model's input normalisation: stored log-mel features -> (noise floor) -> (CMVN).

*Noise floor*: a recording whose background is far quieter than the rest of the corpus (digital
silence, another microphone gain) gives silence frames unlike any the model was trained on.
Adding a constant background power to every log-mel bin, ``log(exp(x) + exp(floor))``, with
``floor`` a low per-bin percentile of the training frames, maps every quieter-than-usual frame
onto the usual background, lifts the usual background by at most log 2 and leaves speech nearly
unchanged. The aligner's front end (asrkd.align.frontend) and the acoustic models share it.

:func:`normalize_input` is the one place a model's input is normalised (training batches, dev
metrics, evaluation, decoding, soft-target teachers): the floor and the CMVN stats a model was
trained with travel in its checkpoint (``noise_floor``, ``cmvn``), and :func:`training_input_norm`
computes both at the start of training.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from asrkd.features.cmvn import CmvnAccumulator, apply_cmvn, load_cmvn
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore

log = logging.getLogger("asrkd.features.inputnorm")

FLOOR_MAX_FRAMES = 200_000  # frames sampled (evenly) to estimate a noise floor


def estimate_floor(store: FrameStore, utts: list[str], percentile: float,
                   max_frames: int = FLOOR_MAX_FRAMES) -> np.ndarray | None:
    """Noise floor ``(F,)`` float32 of the stored features of ``utts``: per-bin ``percentile``
    (%) over at most ``max_frames`` frames taken evenly; None if ``percentile <= 0`` or no frames."""
    if percentile <= 0:
        return None
    utts = [u for u in utts if u in store]
    total = sum(store.num_frames(u) for u in utts)
    if total == 0:
        return None
    step = max(1, -(-total // max(max_frames, 1)))
    sample = np.concatenate([np.asarray(store[u][::step], dtype=np.float32) for u in utts])
    return np.percentile(sample, percentile, axis=0).astype(np.float32)


def apply_floor(feats: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``feats: (frames, F)`` log-mel -> ``(frames, F)`` float32 ``log(exp(feats) + exp(floor))``; ``floor: (F,)``."""
    if feats.ndim != 2 or floor.shape != (feats.shape[1],):
        raise AsrkdError(f"noise floor of shape {floor.shape} does not match features {feats.shape}")
    return np.logaddexp(np.asarray(feats, dtype=np.float32), floor[None, :]).astype(np.float32)


def normalize_input(feats: np.ndarray, cmvn: dict[str, Any] | None, floor: np.ndarray | None) -> np.ndarray:
    """``feats: (frames, F)`` stored features -> ``(frames, F)`` float32 model input: the noise floor
    ``(F,)`` (None: none), then CMVN with one stats entry (None: none)."""
    x = np.asarray(feats, dtype=np.float32)
    if floor is not None:
        x = apply_floor(x, floor)
    if cmvn is not None:
        x = apply_cmvn(x, cmvn)
    return x


def floor_from_state(value: Any) -> np.ndarray | None:
    """A checkpoint's ``noise_floor`` (list of floats, or absent/None) -> ``(F,)`` float32 or None."""
    return None if value is None else np.asarray(value, dtype=np.float32)


def training_input_norm(store: FrameStore, cmvn_mode: str, floor_percentile: float,
                        ) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """The input normalisation of a model trained on ``store`` (a data dir's ``feats/``):
    ``(cmvn stats entry or None, noise floor (F,) or None)``.

    Without a floor the CMVN is the data dir's global ``cmvn.json`` entry. With one, the floor is
    estimated on the store's utterances and the global stats are recomputed on the floored
    frames (one pass), so the model's input is still zero-mean, unit-variance."""
    data_dir = store.directory.parent
    utts = sorted(store.keys())
    floor = estimate_floor(store, utts, floor_percentile)
    if cmvn_mode != "global":
        return None, floor
    if floor is None:
        return load_cmvn(data_dir)["global"], None
    acc = CmvnAccumulator(int(floor.shape[0]))
    for u in utts:
        acc.add("all", apply_floor(np.asarray(store[u]), floor))
    log.info("noise floor: %g-th percentile per bin of %s (mean %.2f); CMVN stats recomputed after it",
             floor_percentile, store.directory, float(floor.mean()))
    return acc.to_json()["global"], floor
