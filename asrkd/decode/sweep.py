"""Choose LM weight and insertion penalty on dev by a grid sweep, as Kaldi's scoring does.

Each grid point decodes every dev utterance and scores it; the point with the lowest WER wins.
A small dev set often ties over a whole region of the grid (real yes/no and digit dev sets tie
at every point); taking the first tied point in grid order then always picks the smallest LM
weight and penalty, the corner of the region, whose test WER was among the worst of the region in
those runs. Ties go instead to the tied point nearest the centre of the tied points (in grid
index units), then to the first in grid order (:func:`pick_plateau_centre`). The acoustic
scores are computed once and reused.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from asrkd.decode.decoder import Decoder, Hypothesis
from asrkd.errors import AsrkdError
from asrkd.evaluation.scoring import ScoreResult, score_texts

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
    """Decode scaled log-likelihoods ``{utt: (frames, C)}``; returns hypotheses and decode seconds."""
    t0 = time.perf_counter()
    hyps = {u: decoder.decode_loglik(ll, lm_weight=lm_weight, insertion_penalty=insertion_penalty)
            for u, ll in logliks.items()}
    return hyps, time.perf_counter() - t0


def sweep(decoder: Decoder, logliks: dict[str, np.ndarray], refs: dict[str, str],
          lm_weights: Sequence[float], insertion_penalties: Sequence[float]) -> SweepResult:
    """Grid search over ``lm_weights`` x ``insertion_penalties`` minimising dev WER."""
    if not logliks:
        raise AsrkdError("no dev utterances to sweep on")
    return sweep_grid(lambda w, p: decode_all(decoder, logliks, w, p), refs, lm_weights,
                      insertion_penalties)


def sweep_grid(decode_fn: Callable[[float, float], tuple[dict[str, Any], float]], refs: dict[str, str],
               lm_weights: Sequence[float], insertion_penalties: Sequence[float]) -> SweepResult:
    """The sweep for any decoder: ``decode_fn(lm_weight, penalty) -> ({utt: hypothesis with
    .text}, seconds)`` decodes the dev set at one grid point (the word graph's decoder uses it too,
    :mod:`asrkd.decode.graph_wer`)."""
    if not lm_weights or not insertion_penalties:
        raise AsrkdError("the sweep needs at least one LM weight and one insertion penalty")
    table = []
    runs = []
    for w in lm_weights:
        for p in insertion_penalties:
            hyps, secs = decode_fn(w, p)
            res = score_texts({u: refs[u] for u in hyps}, {u: h.text for u, h in hyps.items()})
            table.append({"lm_weight": w, "insertion_penalty": p, "wer": res.wer,
                          "errors": res.words.errors, "ref": res.words.ref, "decode_s": secs})
            runs.append((hyps, res))
            log.info("sweep: lm_weight %.2f insertion_penalty %.2f -> WER %.2f%%", w, p, res.wer)
    k = pick_plateau_centre([r["errors"] for r in table], len(insertion_penalties))
    hyps, res = runs[k]
    return SweepResult(table[k]["lm_weight"], table[k]["insertion_penalty"], res.wer, table, hyps, res)


def pick_plateau_centre(errors: Sequence[int], num_cols: int) -> int:
    """Index of the chosen point of a row-major grid of error counts ``(rows * num_cols,)``:
    among the points with the fewest errors, the one nearest the centroid of those points
    (grid index distance), the first in grid order on a tie."""
    if not errors or num_cols < 1 or len(errors) % num_cols:
        raise AsrkdError(f"a grid of {len(errors)} points does not have {num_cols} columns")
    e = np.asarray(errors)
    tied = np.flatnonzero(e == e.min())
    rc = np.stack([tied // num_cols, tied % num_cols], axis=1).astype(np.float64)
    d = ((rc - rc.mean(axis=0)) ** 2).sum(axis=1)
    return int(tied[int(np.argmin(d))])  # argmin: the first of equally near points
