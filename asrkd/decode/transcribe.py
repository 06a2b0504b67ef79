"""Audio files -> text: the same front end as training (``asrkd.features.fbank``), the model's own
input normalisation (inside :func:`asrkd.inference.ensemble.ensemble_posteriors`), then a decoder:
the word graph (:class:`GraphTranscriber` over :class:`asrkd.decode.wfst_decoder.WfstDecoder`) or the unit-LM
:class:`asrkd.decode.Decoder`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from asrkd.data.datadir import feats_dir
from asrkd.decode.decoder import Decoder, log_posteriors
from asrkd.decode.wfst_decoder import WfstDecoder, WfstHypothesis
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.inference.model import InferenceModel, check_models

log = logging.getLogger("asrkd.decode.transcribe")


class GraphTranscriber:
    """A :class:`WfstDecoder` at a fixed LM weight and insertion penalty, with ``decode(log_post)``
    as :class:`asrkd.decode.Decoder` has."""

    def __init__(self, decoder: "WfstDecoder", lm_weight: float, insertion_penalty: float):
        self.decoder = decoder
        self.lm_weight = lm_weight
        self.insertion_penalty = insertion_penalty

    def log_posteriors(self, post: np.ndarray) -> np.ndarray:
        """``(frames, C)`` posteriors -> log-posteriors over the graph's pdfs (the model's classes)."""
        return log_posteriors(post)

    def decode(self, log_post) -> "WfstHypothesis":  # noqa: ANN001
        return self.decoder.decode(self.decoder.loglik(log_post), self.lm_weight, self.insertion_penalty)


def load_feature_config(train_dir: Path, models: Sequence[InferenceModel]) -> "object":  # noqa: ANN001
    """The FeatureConfig of ``train_dir/feats`` (recorded in its attrs), checked against the
    models' training-feature fingerprints."""
    from asrkd.config import from_dict
    from asrkd.features.fbank import FeatureConfig

    store = FrameStore(feats_dir(train_dir))
    raw = store.attrs.get("feature_config")
    if raw is None:
        raise AsrkdError(f"{store.directory} records no feature_config")
    cfg = from_dict(FeatureConfig, raw)
    check_models(models, cfg.fingerprint())
    return cfg


def transcribe_files(paths: Sequence[str], models: Sequence, decoder: "Decoder | GraphTranscriber", feat_cfg,  # noqa: ANN001
                     combine: str = "mean", precision: str = "auto") -> Iterator[tuple[str, str]]:
    """Yield ``(path, text)`` per audio file."""
    from asrkd.data.audio import load_audio
    from asrkd.features.fbank import compute_fbank
    from asrkd.inference.ensemble import ensemble_posteriors

    for p in paths:
        samples = load_audio(str(p), feat_cfg.sample_rate)
        feats = compute_fbank(samples, feat_cfg)
        post = ensemble_posteriors(models, feats, combine, precision)
        hyp = decoder.decode(decoder.log_posteriors(post))
        log.debug("%s: %d frames -> %d words", p, feats.shape[0], len(hyp.text.split()))
        yield str(p), hyp.text

