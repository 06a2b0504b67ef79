"""Audio files -> text: the same front end as training (``asrkd.features.fbank``), the model's own
CMVN (inside :func:`asrkd.evaluation.evaluate.posteriors`), then :class:`asrkd.decode.Decoder`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

from asrkd.decode.decoder import Decoder
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore

log = logging.getLogger("asrkd.decode.transcribe")


def load_feature_config(train_dir: Path, models: Sequence) -> "object":  # noqa: ANN001
    """The FeatureConfig of ``train_dir/feats`` (recorded in its attrs), checked against the
    models' training-feature fingerprints."""
    from asrkd.config import from_dict
    from asrkd.features.fbank import FeatureConfig

    store = FrameStore(Path(train_dir) / "feats")
    raw = store.attrs.get("feature_config")
    if raw is None:
        raise AsrkdError(f"{train_dir}/feats records no feature_config")
    cfg = from_dict(FeatureConfig, raw)
    for m in models:
        fp = (m.meta.get("fingerprints") or {}).get("feats")
        if fp and fp != cfg.fingerprint():
            raise AsrkdError(f"{m.path} was trained on other features than {train_dir}/feats")
    return cfg


def transcribe_files(paths: Sequence[str], models: Sequence, decoder: Decoder, feat_cfg,  # noqa: ANN001
                     combine: str = "mean", precision: str = "auto") -> Iterator[tuple[str, str]]:
    """Yield ``(path, text)`` per audio file."""
    from asrkd.data.audio import load_audio
    from asrkd.evaluation.evaluate import posteriors
    from asrkd.features.fbank import compute_fbank

    for p in paths:
        samples = load_audio(str(p), feat_cfg.sample_rate)
        feats = compute_fbank(samples, feat_cfg)
        post = posteriors(models, feats, combine, precision)
        hyp = decoder.decode(decoder.log_posteriors(post))
        log.debug("%s: %d frames -> %d units", p, feats.shape[0], len(hyp.units))
        yield str(p), hyp.text

