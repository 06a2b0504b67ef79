"""Interpolated modified Kneser-Ney (Chen & Goodman 1998), written in backoff form.

Counts: at the highest order and for n-grams that start with ``<s>`` (they have no left
context), the raw count; otherwise the continuation count ``a(g) = N1+(. g)``, the number of
distinct words seen before ``g``. Per order, three discounts from the counts-of-counts
``n1..n4`` of those adjusted counts::

    Y = n1 / (n1 + 2 n2);  D1 = 1 - 2Y n2/n1;  D2 = 2 - 3Y n3/n2;  D3+ = 3 - 4Y n4/n3

and, for a context ``h`` with continuations ``w`` (``D(a)`` is D1, D2 or D3+ by the count)::

    p(w | h) = (a(h w) - D(a(h w))) / sum_v a(h v)  +  gamma(h) p(w | h[1:])
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / sum_v a(h v)

The unigram level interpolates with the uniform distribution over every predictable id (the
vocabulary, ``</s>`` and ``<unk>``; not ``<s>``), so every word has mass: ``<unk>`` gets the
uniform share only, unless words outside a capped vocabulary were mapped to it (then it is
counted like a word). Every suffix of a seen n-gram is seen, so the interpolated model is exactly
a backoff model with ``bow(h) = gamma(h)``: that is what is written (KenLM's lmplz does the same).

Orders with too little data for the estimate (some ``n_i = 0``, or a discount outside
``(0, i)``) use KenLM's fallback discounts (0.5, 1, 1.5) with a warning.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.lm.counts import NgramTable
from asrkd.lm.model import BOS, EOS, BackoffLM

log = logging.getLogger("asrkd.lm.kneser_ney")

DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)  # KenLM's --discount_fallback: orders with too few counts
ARPA_NEVER = -99.0  # ARPA's log10 "probability" of <s>, which is a context only


@dataclass(frozen=True)
class Discounts:
    """D1, D2, D3+ of one order, the counts-of-counts they came from, and whether they are the
    fallback."""

    d: tuple[float, float, float]
    counts_of_counts: tuple[int, int, int, int]
    fallback: bool

    def of(self, a: np.ndarray) -> np.ndarray:
        """Discount of each adjusted count (0 for a zero count)."""
        d1, d2, d3 = self.d
        return np.select([a <= 0, a == 1, a == 2], [0.0, d1, d2], d3)


def modified_kn_discounts(adjusted: np.ndarray) -> Discounts:
    """Chen & Goodman's three discounts from the (nonzero) adjusted counts of one order."""
    n = tuple(int(np.count_nonzero(adjusted == i)) for i in (1, 2, 3, 4))
    n1, n2, n3, n4 = n
    if min(n) > 0:
        y = n1 / (n1 + 2.0 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if all(0.0 < di < i for i, di in enumerate(d, 1)):
            return Discounts(d, n, False)  # type: ignore[arg-type]
    return Discounts(DISCOUNT_FALLBACK, n, True)  # type: ignore[arg-type]


def adjusted_counts(tables: Sequence[NgramTable], bos: int) -> list[np.ndarray]:
    """Kneser-Ney counts per order (see module docstring); ``<s>`` as a unigram gets 0."""
    N = len(tables)
    out = []
    for k, t in enumerate(tables, 1):
        if k == N:
            a = t.count.astype(np.float64)
        else:
            cont = np.bincount(tables[k].suffix, minlength=len(t.word)).astype(np.float64)
            a = np.where(t.first == bos, t.count, cont).astype(np.float64)
        out.append(a)
    out[0][bos] = 0.0
    return out


def estimate_kneser_ney(tables: Sequence[NgramTable], vocab: Sequence[str]) -> tuple[BackoffLM, list[Discounts]]:
    """The interpolated modified Kneser-Ney LM of the counted ``tables`` (orders 1..N), in
    backoff form, and the discounts per order."""
    vocab = list(vocab)
    index = {w: i for i, w in enumerate(vocab)}
    bos = index[BOS]
    V = len(vocab)
    adj = adjusted_counts(tables, bos)
    discounts = []
    for k, a in enumerate(adj, 1):
        disc = modified_kn_discounts(a)
        if disc.fallback:
            log.warning("order %d: counts-of-counts %s too few for the Kneser-Ney estimate; "
                        "fallback discounts %s", k, disc.counts_of_counts, disc.d)
        discounts.append(disc)

    # Order 1: interpolated with the uniform distribution over every id but <s>.
    a = adj[0]
    if a.sum() <= 0:
        raise AsrkdError("no words to estimate the LM from")
    d = discounts[0].of(a)
    gamma0 = d.sum() / a.sum()
    p = (a - d) / a.sum() + gamma0 / (V - 1)
    p[bos] = 0.0
    probs = [p]
    logp = [np.where(np.arange(V) == bos, ARPA_NEVER, np.log10(np.maximum(p, 1e-300)))]
    bows = []
    for k in range(2, len(tables) + 1):
        t, a = tables[k - 1], adj[k - 1]
        if np.any(a <= 0):
            raise AsrkdError(f"order {k}: an n-gram with a zero Kneser-Ney count (internal error)")
        d = discounts[k - 1].of(a)
        m_prev = len(tables[k - 2].word)
        total = np.bincount(t.prefix, weights=a, minlength=m_prev)
        gamma = np.bincount(t.prefix, weights=d, minlength=m_prev) / np.maximum(total, 1e-300)
        p = (a - d) / total[t.prefix] + gamma[t.prefix] * probs[-1][t.suffix]
        probs.append(p)
        logp.append(np.log10(p))
        bows.append(np.where(total > 0, np.log10(np.maximum(gamma, 1e-300)), 0.0))
    bows.append(np.zeros(len(tables[-1].word)))
    lm = BackoffLM(vocab, [t.prefix for t in tables], [t.word for t in tables], logp, bows)
    log.info("modified Kneser-Ney: order %d, vocabulary %d, n-grams %s, discounts %s",
             lm.order, V, lm.num_ngrams(),
             "; ".join(",".join(f"{x:.3f}" for x in dk.d) for dk in discounts))
    return lm, discounts


def word_loop(words: Sequence[str]) -> BackoffLM:
    """A grammar as an order-1 ARPA: any sequence of ``words``, each word and the end of the
    sentence equally likely after anything (closed vocabulary: no ``<unk>``)."""
    specials = {BOS, EOS}
    vocab = [BOS, EOS] + sorted(set(words) - specials)
    V = len(vocab)
    if V < 3:
        raise AsrkdError("a word loop needs at least one word")
    logp = np.full(V, -math.log10(V - 1))
    logp[0] = ARPA_NEVER
    zeros = np.zeros(V, dtype=np.int64)
    return BackoffLM(vocab, [zeros], [np.arange(V, dtype=np.int64)], [logp], [np.zeros(V)])
