"""Unit n-gram language model: interpolated Kneser-Ney, stored as a backoff automaton.

The model predicts the next *unit* (sentencepiece piece, grapheme or phone id ``0..V-1``) or the
end of the sentence (``EOS = V``) from the previous ``order - 1`` units; sentences start with a
``BOS`` context that is never predicted. Estimation follows Chen & Goodman's interpolated
Kneser-Ney with one discount per order, ``D_k = n1 / (n1 + 2 n2)``:

    p_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h) + D_k N1+(h .) / c_k(h) * p_{k-1}(w | h')

where ``h'`` drops the oldest unit of ``h``, ``c_k`` are raw counts at the highest order and for
n-grams that start with ``BOS`` (they have no left context), and continuation counts
``N1+(. g)`` (number of distinct left neighbours) otherwise. The unigram level interpolates with
the uniform distribution over ``V + 1`` outcomes, so every unit, seen or not, gets mass.

For decoding, the model is the usual backoff form of the same probabilities (as an ARPA file
would store them): a state per seen history, explicit arcs ``(unit, log p, next state)`` for
the n-grams seen after it, a backoff weight and backoff state for everything else. The unigram
state has an arc for every outcome, so a lookup always ends. :func:`lm_lookup` is the numba
function the decoder calls; :class:`UnitLM` holds the arrays, saves to ``.npz`` and writes ARPA.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numba
import numpy as np

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_text

log = logging.getLogger("asrkd.lang.unit_lm")

LM_FORMAT = "asrkd-unit-lm"


@numba.njit(cache=True, nogil=True)
def lm_lookup(
    state: int,
    unit: int,
    arc_start: np.ndarray,
    arc_unit: np.ndarray,
    arc_logp: np.ndarray,
    arc_next: np.ndarray,
    backoff_logw: np.ndarray,
    backoff_state: np.ndarray,
) -> tuple[float, int]:
    """Natural-log probability of ``unit`` after LM ``state`` and the state that follows.

    Follows backoff arcs (adding their weights) until a state has an explicit arc for ``unit``.
    """
    acc = 0.0
    while True:
        lo = arc_start[state]
        hi = arc_start[state + 1]
        while lo < hi:  # binary search: arcs of a state are sorted by unit
            mid = (lo + hi) >> 1
            if arc_unit[mid] < unit:
                lo = mid + 1
            else:
                hi = mid
        if lo < arc_start[state + 1] and arc_unit[lo] == unit:
            return acc + arc_logp[lo], arc_next[lo]
        acc += backoff_logw[state]
        state = backoff_state[state]


@dataclass
class UnitLM:
    """Backoff automaton of an n-gram LM over units ``0..V-1`` plus ``EOS = V``.

    Arrays (S states, A arcs): ``arc_start (S+1,)`` CSR offsets; ``arc_unit, arc_next (A,)``
    int32; ``arc_logp (A,)`` float32 natural-log probabilities; ``backoff_logw (S,)`` float32;
    ``backoff_state (S,)`` int32 (-1 for the unigram state 0). ``contexts[s]``: the history
    of state ``s`` as unit ids (``BOS = V + 1``).
    """

    order: int
    num_units: int
    start_state: int
    arc_start: np.ndarray
    arc_unit: np.ndarray
    arc_logp: np.ndarray
    arc_next: np.ndarray
    backoff_logw: np.ndarray
    backoff_state: np.ndarray
    contexts: list[tuple[int, ...]]

    @property
    def eos(self) -> int:
        return self.num_units

    @property
    def bos(self) -> int:
        return self.num_units + 1

    @property
    def num_states(self) -> int:
        return len(self.backoff_state)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays :func:`lm_lookup` takes after ``(state, unit)``."""
        return (self.arc_start, self.arc_unit, self.arc_logp, self.arc_next,
                self.backoff_logw, self.backoff_state)

    def state_of(self, history: Sequence[int]) -> int:
        """State of a history (unit ids, may start with ``BOS``): its longest suffix that is a state."""
        index = {c: i for i, c in enumerate(self.contexts)}
        h = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        while h not in index:
            h = h[1:]
        return index[h]

    def logprob(self, history: Sequence[int], unit: int) -> float:
        """Natural-log ``p(unit | history)``; ``unit`` may be ``EOS``."""
        if not 0 <= unit <= self.num_units:
            raise AsrkdError(f"unit {unit} outside 0..{self.num_units}")
        return float(lm_lookup(self.state_of(history), unit, *self.arrays())[0])

    def sentence_logprob(self, units: Sequence[int]) -> float:
        """Natural-log probability of a whole unit sequence, ``EOS`` included."""
        state, total = self.start_state, 0.0
        for u in list(units) + [self.eos]:
            lp, state = lm_lookup(state, int(u), *self.arrays())
            total += lp
        return total

    def save(self, path: Path) -> None:
        """Write the LM as ``.npz`` (plain arrays; loads without pickle)."""
        ctx_flat = np.array([u for c in self.contexts for u in c], dtype=np.int32)
        ctx_len = np.array([len(c) for c in self.contexts], dtype=np.int32)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, format=np.array(LM_FORMAT), order=self.order, num_units=self.num_units,
                 start_state=self.start_state, arc_start=self.arc_start, arc_unit=self.arc_unit,
                 arc_logp=self.arc_logp, arc_next=self.arc_next, backoff_logw=self.backoff_logw,
                 backoff_state=self.backoff_state, ctx_flat=ctx_flat, ctx_len=ctx_len)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "UnitLM":
        with np.load(Path(path), allow_pickle=False) as z:
            if str(z["format"]) != LM_FORMAT:
                raise AsrkdError(f"{path}: not a unit LM file")
            offsets = np.concatenate([[0], np.cumsum(z["ctx_len"])])
            flat = z["ctx_flat"].tolist()
            contexts = [tuple(flat[offsets[i]:offsets[i + 1]]) for i in range(len(z["ctx_len"]))]
            return cls(int(z["order"]), int(z["num_units"]), int(z["start_state"]),
                       z["arc_start"], z["arc_unit"], z["arc_logp"], z["arc_next"],
                       z["backoff_logw"], z["backoff_state"], contexts)

    def write_arpa(self, path: Path, unit_names: Sequence[str]) -> None:
        """Export in ARPA format (log10 probabilities, ``<s>``/``</s>``), e.g. for SRILM/KenLM."""
        if len(unit_names) != self.num_units:
            raise AsrkdError(f"{len(unit_names)} unit names for {self.num_units} units")
        names = list(unit_names) + ["</s>", "<s>"]
        index = {c: i for i, c in enumerate(self.contexts)}
        by_order: dict[int, list[str]] = defaultdict(list)
        l10 = 1.0 / math.log(10.0)
        for s, ctx in enumerate(self.contexts):
            for a in range(self.arc_start[s], self.arc_start[s + 1]):
                ngram = ctx + (int(self.arc_unit[a]),)
                line = f"{self.arc_logp[a] * l10:.6f}\t{' '.join(names[u] for u in ngram)}"
                if ngram in index:
                    line += f"\t{self.backoff_logw[index[ngram]] * l10:.6f}"
                by_order[len(ngram)].append(line)
        # <s> is a unigram that only serves as a context (probability 0, i.e. -99 in ARPA).
        bos_line = "-99\t<s>"
        if (self.bos,) in index:
            bos_line += f"\t{self.backoff_logw[index[(self.bos,)]] * l10:.6f}"
        by_order[1].append(bos_line)
        out = ["", "\\data\\"]
        out += [f"ngram {k}={len(by_order[k])}" for k in sorted(by_order)]
        for k in sorted(by_order):
            out += ["", f"\\{k}-grams:"] + by_order[k]
        out += ["", "\\end\\", ""]
        atomic_write_text(Path(path), "\n".join(out))


def _discount(counts: Iterable[float]) -> float:
    n1 = n2 = 0
    for c in counts:
        n1 += c == 1
        n2 += c == 2
    if n1 == 0 or n2 == 0:
        return 0.5  # too little data for the estimate; a middle value keeps mass for backoff
    return n1 / (n1 + 2.0 * n2)


def estimate_kn(sentences: Iterable[Sequence[int]], num_units: int, order: int = 3) -> UnitLM:
    """Interpolated Kneser-Ney LM from unit-id sentences (see module docstring).

    ``sentences``: iterables of ints in ``0..num_units-1``. Returns the backoff automaton.
    """
    if order < 1:
        raise AsrkdError(f"LM order must be >= 1, got {order}")
    V = num_units
    EOS, BOS = V, V + 1
    raw: list[dict[tuple[int, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    num_sent = 0
    for sent in sentences:
        s = [int(u) for u in sent]
        if any(u < 0 or u >= V for u in s):
            raise AsrkdError(f"LM training sentence has a unit outside 0..{V - 1}: {s}")
        padded = [BOS] + s + [EOS]
        num_sent += 1
        for i in range(1, len(padded)):
            for k in range(1, order + 1):
                if i - k + 1 < 0:
                    break
                raw[k][tuple(padded[i - k + 1:i + 1])] += 1
    if num_sent == 0:
        raise AsrkdError("no sentences to estimate the LM from")

    # Modified counts: raw at the top order and for BOS-initial n-grams, else continuation counts.
    left_ext: list[dict[tuple[int, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    for k in range(2, order + 1):
        for g in raw[k]:
            left_ext[k - 1][g[1:]] += 1
    counts: list[dict[tuple[int, ...], float]] = [{} for _ in range(order + 1)]
    for k in range(1, order + 1):
        for g, c in raw[k].items():
            use_raw = k == order or g[0] == BOS
            counts[k][g] = float(c) if use_raw else float(left_ext[k][g])
    discounts = [0.0] + [_discount(counts[k].values()) for k in range(1, order + 1)]

    # Per context: total count, number of distinct followers, and the followers.
    ctx_total: dict[tuple[int, ...], float] = defaultdict(float)
    ctx_types: dict[tuple[int, ...], int] = defaultdict(int)
    followers: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for k in range(1, order + 1):
        for g, c in counts[k].items():
            if c > 0:
                h = g[:-1]
                ctx_total[h] += c
                ctx_types[h] += 1
                followers[h].append(g[-1])
    contexts = sorted(ctx_total, key=lambda h: (len(h), h))  # () first: state 0 is the unigram
    index = {h: i for i, h in enumerate(contexts)}

    memo: dict[tuple[tuple[int, ...], int], float] = {}

    def gamma(h: tuple[int, ...]) -> float:
        return discounts[len(h) + 1] * ctx_types[h] / ctx_total[h]

    def prob(h: tuple[int, ...], w: int) -> float:
        """Interpolated probability p(w | h); h of any length <= order - 1."""
        key = (h, w)
        if key in memo:
            return memo[key]
        if h not in ctx_total:  # unseen context: all mass to the shorter history
            p = prob(h[1:], w)
        else:
            k = len(h) + 1
            c = counts[k].get(h + (w,), 0.0)
            lower = prob(h[1:], w) if h else 1.0 / (V + 1)
            p = max(c - discounts[k], 0.0) / ctx_total[h] + gamma(h) * lower
        memo[key] = p
        return p

    arc_start = [0]
    arc_unit: list[int] = []
    arc_logp: list[float] = []
    arc_next: list[int] = []
    backoff_logw = np.zeros(len(contexts), dtype=np.float32)
    backoff_state = np.full(len(contexts), -1, dtype=np.int32)
    for s, h in enumerate(contexts):
        outcomes = range(V + 1) if not h else sorted(set(followers[h]))
        for w in outcomes:
            arc_unit.append(w)
            arc_logp.append(math.log(prob(h, w)))
            if w == EOS or order == 1:
                arc_next.append(0)
            else:
                nxt = (h + (w,))[-(order - 1):]
                while nxt not in index:
                    nxt = nxt[1:]
                arc_next.append(index[nxt])
        arc_start.append(len(arc_unit))
        if h:
            backoff_logw[s] = math.log(gamma(h))
            backoff_state[s] = index[h[1:]]
    start = (BOS,) if order > 1 else ()
    lm = UnitLM(order, V, index[start], np.array(arc_start, dtype=np.int32),
                np.array(arc_unit, dtype=np.int32), np.array(arc_logp, dtype=np.float32),
                np.array(arc_next, dtype=np.int32), backoff_logw, backoff_state, contexts)
    log.info("unit LM: order %d, %d units, %d sentences, %d states, %d arcs, discounts %s",
             order, V, num_sent, lm.num_states, len(arc_unit),
             ", ".join(f"{d:.3f}" for d in discounts[1:]))
    return lm
