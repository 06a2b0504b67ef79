"""Shrinking a backoff LM: count cut-offs and relative-entropy pruning (Stolcke 1998).

Both remove n-grams of order >= 2 from the backoff model (unigrams stay); the probabilities of
the n-grams that remain are unchanged and the backoff weight of every context that lost an
n-gram is recomputed so that its distribution sums to 1 again (SRILM's ``-prune``):

    bow(h) = (1 - sum_{w kept after h} p(w | h)) / (1 - sum_{w kept after h} p(w | h[1:]))

Relative entropy (Stolcke): removing ``h w`` changes ``p(w | h)`` to ``bow'(h) p(w | h[1:])``
and rescales every other backed-off word of ``h``; the increase in the model's relative entropy
is

    D = -P(h) [ p(w|h) (ln p(w|h[1:]) + ln bow'(h) - ln p(w|h)) + S(h) (ln bow'(h) - ln bow(h)) ]

with ``S(h) = 1 - sum_{kept} p(.|h)`` (the backed-off mass), ``bow'(h) = (S(h) + p(w|h)) /
(1 - sum_{kept} p(.|h[1:]) + p(w|h[1:]))`` and ``P(h)`` the model's own probability of the
history (chain rule, ``P(<s>) = 1``). An n-gram goes when ``exp(D) - 1`` (the relative rise in
perplexity) is below the threshold. Orders are pruned from the highest down, each n-gram judged
alone against the model as it stands before its order is pruned.

An n-gram is never removed while a longer kept n-gram needs it: as its prefix (the context that
holds the backoff weight) or as its suffix (the backoff target). The result is closed under
prefixes and suffixes, as KenLM's and Kaldi's tools expect. Pruning to a size searches the
threshold (bisection on its logarithm) that leaves at most the requested number of n-grams.

Relative-entropy pruning of a Kneser-Ney model loses more than its criterion promises once it
is heavy, because Kneser-Ney's lower orders are continuation distributions, poor on their own
(Chelba et al. 2010); at the same size, count cut-offs then give a lower perplexity (measured on
LJ Speech and synth: recipes/ljspeech/README.md). Light pruning (1e-7) costs about 1-2%.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.lm.model import BackoffLM

log = logging.getLogger("asrkd.lm.prune")


class Pruner:
    """Precomputed tables of one LM for repeated pruning (e.g. the search for a size)."""

    def __init__(self, lm: BackoffLM, raw_counts: Sequence[np.ndarray] | None = None) -> None:
        if any(np.any(np.isnan(lp)) for lp in lm.logp):
            raise AsrkdError("pruning needs an LM whose every context is an n-gram")
        self.lm = lm
        self.raw_counts = raw_counts
        N = lm.order
        self.suffix = [lm.suffix_rows(k) for k in range(1, N + 1)]
        if any(np.any(s < 0) for s in self.suffix):
            raise AsrkdError("pruning needs an LM that lists the suffix of every n-gram "
                             "(as Kneser-Ney estimates do)")
        self.p = [10.0 ** lp for lp in lm.logp]
        self.p[0][lm.bos] = 0.0
        # P(h) of every row as a history: chain rule, P(<s>) = 1.
        hist = [self.p[0].copy()]
        hist[0][lm.bos] = 1.0
        for k in range(2, N + 1):
            hist.append(hist[-1][lm.prefix[k - 1]] * self.p[k - 1])
        self.hist = hist
        # p(w | h[1:]) of each row: the probability of its suffix (listed, see above).
        self.q = [np.zeros(0)] + [self.p[k - 2][self.suffix[k - 1]] for k in range(2, N + 1)]

    def _sums(self, k: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per context at order k-1: 1 - sum of kept p(w|h), 1 - sum of kept p(w|h[1:])."""
        lm = self.lm
        m_prev = len(lm.word[k - 2])
        ctx = lm.prefix[k - 1][keep]
        num = 1.0 - np.bincount(ctx, weights=self.p[k - 1][keep], minlength=m_prev)
        den = 1.0 - np.bincount(ctx, weights=self.q[k - 1][keep], minlength=m_prev)
        return num, den

    def keep_masks(self, threshold: float = 0.0, cutoffs: Sequence[int] = ()) -> list[np.ndarray]:
        """Per order, which rows stay. ``cutoffs[i]``: order i + 2 loses n-grams seen at most that
        many times (the last value repeats); ``threshold``: the relative-entropy criterion."""
        lm = self.lm
        N = lm.order
        keep = [np.ones(len(w), dtype=bool) for w in lm.word]
        if cutoffs and self.raw_counts is None:
            raise AsrkdError("count cut-offs need the raw counts of the n-grams")
        for k in range(N, 1, -1):
            cand = np.ones(len(lm.word[k - 1]), dtype=bool)
            if k < N:  # prefixes and suffixes of kept longer n-grams stay
                cand[lm.prefix[k][keep[k]]] = False
                cand[self.suffix[k][keep[k]]] = False
            if cutoffs:
                c = cutoffs[min(k - 2, len(cutoffs) - 1)]
                drop = cand & (self.raw_counts[k - 1] <= c)
                keep[k - 1] &= ~drop
                cand &= ~drop
            if threshold > 0 and np.any(cand):
                idx = np.flatnonzero(cand)
                delta = self._entropy_rise(k, idx, keep[k - 1])
                keep[k - 1][idx[np.expm1(delta) < threshold]] = False
        return keep

    def _entropy_rise(self, k: int, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Relative-entropy increase (nats) of removing each of ``rows`` (order k) alone."""
        num, den = self._sums(k, keep)
        c = self.lm.prefix[k - 1][rows]
        p, q = self.p[k - 1][rows], self.q[k - 1][rows]
        s, d = num[c], den[c]
        tiny = 1e-300
        bow_new = (s + p) / np.maximum(d + q, tiny)
        bow_old = s / np.maximum(d, tiny)
        # S(h) -> 0 (a context that lists every word): its backed-off term vanishes.
        rescale = np.where(s > 1e-12, s * (np.log(np.maximum(bow_new, tiny)) - np.log(np.maximum(bow_old, tiny))), 0.0)
        change = p * (np.log(q) + np.log(np.maximum(bow_new, tiny)) - np.log(p))
        return -self.hist[k - 2][c] * (change + rescale)

    @staticmethod
    def size(keep: list[np.ndarray]) -> int:
        return int(sum(int(np.count_nonzero(m)) for m in keep))

    def apply(self, keep: list[np.ndarray]) -> BackoffLM:
        """The LM with only the kept rows, backoff weights renormalised where n-grams went."""
        lm = self.lm
        N = lm.order
        new_row = [np.cumsum(m) - 1 for m in keep]
        prefix, word, logp, bow = [], [], [], []
        for k in range(1, N + 1):
            m = keep[k - 1]
            pre = lm.prefix[k - 1][m]
            prefix.append(new_row[k - 2][pre] if k > 1 else pre)
            word.append(lm.word[k - 1][m])
            logp.append(lm.logp[k - 1][m])
            b = lm.bow[k - 1].copy()
            if k < N:
                m_next = keep[k]
                lost = np.bincount(lm.prefix[k][~m_next], minlength=len(b)) > 0
                has = np.bincount(lm.prefix[k][m_next], minlength=len(b)) > 0
                num, den = self._sums(k + 1, m_next)
                fix = lost & has
                b[fix] = np.log10(np.maximum(num[fix], 1e-300)) - np.log10(np.maximum(den[fix], 1e-300))
                b[~has] = 0.0
            bow.append(b[m])
        return BackoffLM(list(lm.vocab), prefix, word, logp, bow)


def prune(lm: BackoffLM, *, threshold: float = 0.0, cutoffs: Sequence[int] = (), max_ngrams: int = 0,
          raw_counts: Sequence[np.ndarray] | None = None) -> tuple[BackoffLM, float]:
    """Prune ``lm`` (see module docstring); returns the pruned LM and the threshold used.

    ``cutoffs`` apply first; then relative-entropy pruning at ``threshold``, or, with
    ``max_ngrams > 0``, at the smallest threshold (at least ``threshold``) that leaves at most
    ``max_ngrams`` n-grams in all orders. ``raw_counts``: per order, the raw count of every row
    (for the cut-offs).
    """
    if lm.order < 2 or (threshold <= 0 and not cutoffs and max_ngrams <= 0):
        return lm, 0.0
    pr = Pruner(lm, raw_counts)
    keep = pr.keep_masks(threshold, cutoffs)
    if max_ngrams > 0 and pr.size(keep) > max_ngrams:
        floor = len(lm.word[0])
        if max_ngrams < floor:
            raise AsrkdError(f"max_ngrams {max_ngrams} is below the number of unigrams ({floor}), "
                             "which are never pruned")
        lo, hi = math.log10(threshold) if threshold > 0 else -15.0, 0.0
        while pr.size(pr.keep_masks(10.0 ** hi, cutoffs)) > max_ngrams and hi < 12:
            hi += 2.0
        for _ in range(40):  # bisection on log10(threshold): size falls as the threshold rises
            mid = 0.5 * (lo + hi)
            if pr.size(pr.keep_masks(10.0 ** mid, cutoffs)) > max_ngrams:
                lo = mid
            else:
                hi = mid
        threshold = 10.0 ** hi
        keep = pr.keep_masks(threshold, cutoffs)
        if pr.size(keep) > max_ngrams:
            log.warning("pruning cannot reach %d n-grams (closest: %d)", max_ngrams, pr.size(keep))
    out = pr.apply(keep)
    log.info("pruned (cut-offs %s, threshold %.3g): n-grams %s -> %s", list(cutoffs) or "none",
             threshold, lm.num_ngrams(), out.num_ngrams())
    return out, threshold
