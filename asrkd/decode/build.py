"""Build a :class:`asrkd.decode.Decoder` from a lang and training transcripts.

The unit LM is estimated on the training transcripts tokenised by the lang (the same
sentencepiece model / lexicon / graphemes as the labels); the word list, used by word-list
graphs, is the set of training words. Transcripts the lang cannot tokenise are skipped (logged).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from asrkd.decode.decoder import DecodeConfig, Decoder
from asrkd.errors import AsrkdError
from asrkd.lang.unit_lm import UnitLM, estimate_kn

log = logging.getLogger("asrkd.decode.build")


def unit_sentences(lang, texts: Iterable[str]) -> list[list[int]]:  # noqa: ANN001
    """Unit-id sequence (silence excluded) of every transcript the lang can tokenise."""
    out, failed = [], 0
    for t in texts:
        if not t.strip():
            continue
        try:
            out.append([u for word in lang.transcript_units(t) for u in word])
        except AsrkdError:
            failed += 1
    if failed:
        log.warning("LM: %d transcript(s) skipped (words the lang cannot tokenise)", failed)
    return out


def build_lm(lang, texts: Iterable[str], order: int, cache: Path | None = None) -> UnitLM:  # noqa: ANN001
    """Unit n-gram LM of ``texts``; with ``cache``, load it from there if it was built for the
    same lang fingerprint, order and texts, else build and save it (``.npz``)."""
    texts = list(texts)
    key = None
    if cache is not None:
        from asrkd.fileio import sha256_strings

        key = sha256_strings([lang.fingerprint, str(order), *texts])
        tag = Path(cache).with_suffix(".key")
        if Path(cache).is_file() and tag.is_file() and tag.read_text().strip() == key:
            return UnitLM.load(Path(cache))
    sents = unit_sentences(lang, texts)
    if not sents:
        raise AsrkdError("no training transcript could be tokenised for the LM")
    lm = estimate_kn(sents, len(lang.units), order)
    if cache is not None and key is not None:
        from asrkd.fileio import atomic_write_text

        lm.save(Path(cache))
        atomic_write_text(Path(cache).with_suffix(".key"), key + "\n")
    return lm


def build_decoder(lang, train_texts: Iterable[str], cfg: DecodeConfig,  # noqa: ANN001
                  log_prior: np.ndarray | None = None, lm_cache: Path | None = None,
                  excluded_units: Sequence[int] = ()) -> Decoder:
    """Decoder with an LM of order ``cfg.lm_order`` and the training word list, without
    ``excluded_units`` (see :class:`Decoder`)."""
    texts = [t for t in train_texts if t.strip()]
    lm = build_lm(lang, texts, cfg.lm_order, lm_cache)
    words = sorted({w for t in texts for w in t.split()})
    return Decoder(lang, cfg, lm=lm, log_prior=log_prior, word_list=words, excluded_units=excluded_units)
