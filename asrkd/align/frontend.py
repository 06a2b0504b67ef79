"""Features for the Gaussian aligner: stored fbank -> noise floor -> CMVN -> (optional) cepstra
-> deltas.

*Noise floor* (:mod:`asrkd.features.inputnorm`): a recording whose background is far quieter than the
rest of the corpus gives silence frames that no silence Gaussian trained on the usual background
explains; they end up in the broadest speech state instead, and the labels teach the acoustic
model that quiet means speech. The floor, a low per-bin percentile of the training frames
(stored with the model), maps every quieter-than-usual frame onto the usual background.

Diagonal Gaussians model decorrelated features best, so by default the 40 log-mel energies are
turned into ``num_ceps`` cepstral coefficients (DCT-II, as MFCCs are made) before deltas;
``num_ceps = 0`` keeps the filterbank as is. Deltas follow Kaldi's ``add-deltas`` (window 2,
regression formula, edges replicated).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkd.features import inputnorm
from asrkd.features.cmvn import load_cmvn
from asrkd.data.datadir import read_num_frames, read_table
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore


@dataclass(frozen=True)
class FrontendConfig:
    num_ceps: int = 13  # cepstra kept after a DCT of the log-mel bins (0: use the bins as they are)
    delta_order: int = 2  # 0: statics only, 1: + deltas, 2: + delta-deltas
    delta_window: int = 2  # frames each side in the delta regression
    cmvn: str = "speaker"  # "speaker", "global" or "none": mean/variance normalisation
    floor_percentile: float = 5.0  # noise floor per log-mel bin: this percentile (%) of the training frames (0: none)
    floor_max_frames: int = 200_000  # frames sampled (evenly) to estimate the noise floor


def dct_matrix(num_in: int, num_out: int) -> np.ndarray:
    """Orthonormal DCT-II basis ``(num_in, num_out)``: ``ceps = fbank @ M``."""
    n = np.arange(num_in)[:, None]
    k = np.arange(num_out)[None, :]
    m = np.cos(np.pi / num_in * (n + 0.5) * k) * np.sqrt(2.0 / num_in)
    m[:, 0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def add_deltas(x: np.ndarray, order: int, window: int) -> np.ndarray:
    """``x: (frames, F)`` -> ``(frames, F * (order + 1))``: statics, deltas, delta-deltas."""
    out = [x]
    denom = 2.0 * sum(i * i for i in range(1, window + 1))
    cur = x
    for _ in range(order):
        padded = np.concatenate([np.repeat(cur[:1], window, 0), cur, np.repeat(cur[-1:], window, 0)])
        n_frames = cur.shape[0]
        d = np.zeros_like(cur)
        for i in range(1, window + 1):
            d += i * (padded[window + i : window + i + n_frames] - padded[window - i : window - i + n_frames])
        cur = d / denom
        out.append(cur)
    return np.concatenate(out, axis=1).astype(np.float32)


def estimate_floor(store: FrameStore, utts: list[str], cfg: FrontendConfig) -> np.ndarray | None:
    """Noise floor ``(F,)`` of the stored features of ``utts`` (:func:`asrkd.features.inputnorm.estimate_floor`
    with this front end's percentile and frame budget); None if the floor is off."""
    return inputnorm.estimate_floor(store, utts, cfg.floor_percentile, cfg.floor_max_frames)


def transform(feats: np.ndarray, stats: dict | None, cfg: FrontendConfig,
              floor: np.ndarray | None = None) -> np.ndarray:
    """``feats: (frames, F)`` stored features -> ``(frames, D)`` aligner features; ``floor: (F,)`` noise
    floor (:func:`estimate_floor`) or None."""
    # CMVN stats of the raw features after the floor: still one fixed affine map per speaker.
    x = inputnorm.normalize_input(feats, stats, floor)
    if cfg.num_ceps > 0:
        x = x @ dct_matrix(x.shape[1], min(cfg.num_ceps, x.shape[1]))
    return add_deltas(x, cfg.delta_order, cfg.delta_window)


def load_features(data_dir: Path, utts: list[str], cfg: FrontendConfig,
                  floor: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], str, np.ndarray | None]:
    """Aligner features of ``utts`` of ``data_dir`` -> ({utt: (frames, D)}, feats fingerprint, noise
    floor ``(F,)``). ``floor``: the training set's (from the model); None estimates it here
    (training) when ``cfg.floor_percentile > 0``."""
    data_dir = Path(data_dir)
    store = FrameStore(data_dir / "feats")
    if floor is None:
        floor = estimate_floor(store, utts, cfg)
    elif tuple(floor.shape) != tuple(store.shape):
        raise AsrkdError(f"{data_dir}/feats have dimension {store.shape}, the aligner's noise floor {floor.shape}")
    expected = read_num_frames(data_dir)
    cmvn = load_cmvn(data_dir) if cfg.cmvn != "none" else None
    utt2spk = read_table(data_dir / "utt2spk")
    out = {}
    for u in utts:
        if u not in store:
            continue
        f = store[u]
        if f.shape[0] != expected.get(u):
            raise AsrkdError(f"{data_dir}: {u} has {f.shape[0]} feature frames, utt2num_frames says {expected.get(u)}")
        stats = None
        if cmvn is not None:
            stats = cmvn["speakers"].get(utt2spk[u]) if cfg.cmvn == "speaker" else None
            stats = stats or cmvn["global"]
        out[u] = transform(f, stats, cfg, floor)
    return out, str(store.attrs.get("fingerprint", "")), floor
