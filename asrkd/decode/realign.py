"""Realign a set with trained DNNs (one model or an ensemble): ``asrkd align --dnn MODEL ...``.

The hybrid emission score of a class is its posterior divided by its prior, in the log domain
and scaled (:func:`asrkd.align.aligner.scaled_loglik`); the priors are the class frequencies of a
label store (the labels the models were trained on, :mod:`asrkd.decode.priors`). The Viterbi and
the graphs are the Gaussian aligner's: the same transcripts, optional silences and (on a
tied-state lang) the same context-dependent states. The label store and CTMs are written as
the Gaussian aligner writes them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from asrkd.align.aligner import scaled_loglik
from asrkd.align.config import DnnAlignConfig
from asrkd.align.flatstart import ScoreFn
from asrkd.align.labels import labels_dir
from asrkd.align.pipeline import SkipPolicy, align_set, complete
from asrkd.decode.priors import class_counts, log_priors
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.inference.ensemble import ensemble_posteriors
from asrkd.inference.model import check_models, load_model
from asrkd.lang.tied import load_inventory

log = logging.getLogger("asrkd.align")


def dnn_score_fn(models: Sequence, feats: FrameStore, log_prior: np.ndarray, cfg: DnnAlignConfig) -> ScoreFn:
    """Scores of a model/ensemble on the stored features: ``(utt, classes (K,)) -> (frames, K)``."""
    def score(u: str, classes: np.ndarray) -> np.ndarray:
        post = ensemble_posteriors(models, np.asarray(feats[u]), cfg.combine, cfg.precision)  # (frames, C)
        log_post = np.log(np.maximum(post[:, classes], 1e-30))
        return scaled_loglik(log_post, log_prior[classes], cfg.acoustic_scale)

    return score


def realign_with_dnn(data_dir: Path, lang_dir: Path, name: str, model_paths: Sequence[Path], prior_labels: Path,
                     cfg: DnnAlignConfig, force: bool = False, policy: SkipPolicy = SkipPolicy(),
                     device: str = "auto") -> Path:
    """Align ``data_dir`` with the models' posteriors over the classes of ``lang_dir``; priors
    from the label store ``prior_labels``. Writes ``data_dir/labels/<name>``."""
    data_dir = Path(data_dir)
    if complete(data_dir, name, force):
        return labels_dir(data_dir, name)
    inv = load_inventory(lang_dir)
    models = [load_model(Path(p), device) for p in model_paths]
    feats = FrameStore(data_dir / "feats")
    feats_fp = str(feats.attrs.get("fingerprint", ""))
    check_models(models, feats_fp, inv.fingerprint)
    if models[0].config.num_classes != inv.num_classes:
        raise AsrkdError(f"the models have {models[0].config.num_classes} classes, {lang_dir} {inv.num_classes}")
    prior_store = FrameStore(Path(prior_labels))
    if prior_store.attrs.get("lang_fingerprint") != inv.fingerprint:
        raise AsrkdError(f"{prior_labels} are labels of another class inventory than {lang_dir}")
    log_prior = log_priors(class_counts(Path(prior_labels), inv.num_classes), cfg.prior_floor)
    source = "dnn:" + ",".join(str(p) for p in model_paths)
    return align_set(data_dir, name, inv, set(feats.keys()), dnn_score_fn(models, feats, log_prior, cfg), feats_fp,
                     source, {"models": [str(p) for p in model_paths], "prior_labels": str(prior_labels),
                              "acoustic_scale": cfg.acoustic_scale, "combine": cfg.combine}, desc="dnn align",
                     policy=policy)
