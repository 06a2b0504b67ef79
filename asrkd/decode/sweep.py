"""Choose LM weight and insertion penalty on dev by a grid sweep, as Kaldi's scoring does.

Each grid point decodes every dev utterance and scores it; the point with the lowest WER wins
(ties: the first in grid order, i.e. the smaller LM weight, then the smaller penalty). The
acoustic scores are computed once and reused.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from asrkd.decode.decoder import Decoder, Hypothesis
from asrkd.errors import AsrkdError
from asrkd.scoring import ScoreResult, score_texts

log = logging.getLogger("asrkd.decode.sweep")


@dataclass
class SweepResult:
    """``table``: one dict per grid point (lm_weight, insertion_penalty, wer, errors, ref)."""

    lm_weight: float
    insertion_penalty: float
    wer: float
    table: list[dict] = field(default_factory=list)
    hyps: dict[str, Hypothesis] = field(default_factory=dict)
    score: ScoreResult | None = None


def decode_all(decoder: Decoder, logliks: dict[str, np.ndarray], lm_weight: float,
               insertion_penalty: float) -> tuple[dict[str, Hypothesis], float]:
    """Decode scaled log-likelihoods ``{utt: (T, C)}``; returns hypotheses and decode seconds."""
    t0 = time.perf_counter()
    hyps = {u: decoder.decode_loglik(ll, lm_weight=lm_weight, insertion_penalty=insertion_penalty)
            for u, ll in logliks.items()}
    return hyps, time.perf_counter() - t0


def sweep(decoder: Decoder, logliks: dict[str, np.ndarray], refs: dict[str, str],
          lm_weights: Sequence[float], insertion_penalties: Sequence[float]) -> SweepResult:
    """Grid search over ``lm_weights`` x ``insertion_penalties`` minimising dev WER."""
    if not lm_weights or not insertion_penalties:
        raise AsrkdError("the sweep needs at least one LM weight and one insertion penalty")
    if not logliks:
        raise AsrkdError("no dev utterances to sweep on")
    best: SweepResult | None = None
    table = []
    sub_refs = {u: refs[u] for u in logliks}
    for w in lm_weights:
        for p in insertion_penalties:
            hyps, secs = decode_all(decoder, logliks, w, p)
            res = score_texts(sub_refs, {u: h.text for u, h in hyps.items()})
            table.append({"lm_weight": w, "insertion_penalty": p, "wer": res.wer,
                          "errors": res.words.errors, "ref": res.words.ref, "decode_s": secs})
            log.info("sweep: lm_weight %.2f insertion_penalty %.2f -> WER %.2f%%", w, p, res.wer)
            if best is None or res.wer < best.wer:
                best = SweepResult(w, p, res.wer, hyps=hyps, score=res)
    assert best is not None
    best.table = table
    return best
