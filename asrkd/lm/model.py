"""The backoff n-gram LM (what an ARPA file holds) and its vectorised lookups.

Tables per order ``k = 1..N`` (Python list index ``k - 1``):

- order 1 has one row per vocabulary id (row == word id), so a word's unigram is ``row w``;
- order ``k >= 2``: ``prefix`` is the row (at order ``k - 1``) of the first ``k - 1`` words and
  ``word`` the last word id; rows are sorted by ``key = prefix * V + word`` (``V`` = vocabulary
  size), so the n-grams that continue one context are contiguous and a lookup is a binary search.

``logp`` is log10 p(word | the first k - 1 words); NaN marks a row that is no n-gram of the
model and is only kept as the context of longer ones (an ARPA file may list ``a b c`` without
``a b``). ``bow`` is the log10 backoff weight of the n-gram as a context (0 where there is none).

Probabilities follow ARPA semantics: ``p(w | h) = p(h w)`` if ``h w`` is listed, else
``bow(h) p(w | h[1:])``, with ``bow(h) = 1`` when ``h`` is not listed. ``<s>`` is a context only
(ARPA's -99); ``</s>`` is predicted; ``<unk>`` (or ``<UNK>``), when in the vocabulary, stands
for every word outside it (an open vocabulary); without it an out-of-vocabulary word has
probability 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from asrkd.errors import AsrkdError

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_SPELLINGS = (UNK, "<UNK>")  # LMs made for upper-case text (Kaldi's LibriSpeech recipe) spell it so


def find_sorted(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Positions of ``keys`` in the ascending int64 array ``table``; -1 where absent."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(table) == 0:
        return np.full(keys.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return np.where(table[pos] == keys, pos, -1)


@dataclass(eq=False)
class BackoffLM:
    """An n-gram LM in backoff form (see the module docstring for the table layout).

    ``prefix[k-1], word[k-1], logp[k-1], bow[k-1]``: ``(M_k,)`` arrays of order ``k``
    (int64, int64, float64 log10, float64 log10).
    """

    vocab: list[str]
    prefix: list[np.ndarray]
    word: list[np.ndarray]
    logp: list[np.ndarray]
    bow: list[np.ndarray]
    keys: list[np.ndarray] = field(init=False, repr=False)
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        V = len(self.vocab)
        n = len(self.word)
        if n < 1 or not (len(self.prefix) == len(self.logp) == len(self.bow) == n):
            raise AsrkdError("LM tables: one prefix/word/logp/bow array per order needed")
        self.index = {w: i for i, w in enumerate(self.vocab)}
        if len(self.index) != V:
            raise AsrkdError("LM vocabulary has duplicate words")
        for w in (BOS, EOS):
            if w not in self.index:
                raise AsrkdError(f"LM vocabulary lacks {w}")
        if len(self.word[0]) != V or np.any(self.word[0] != np.arange(V)):
            raise AsrkdError("LM order-1 table must hold one row per vocabulary id, in id order")
        self.keys = []
        for k in range(n):
            m = len(self.word[k])
            if not (len(self.prefix[k]) == len(self.logp[k]) == len(self.bow[k]) == m):
                raise AsrkdError(f"LM order {k + 1}: arrays of different lengths")
            keys = self.prefix[k].astype(np.int64) * V + self.word[k].astype(np.int64)
            if m > 1 and not np.all(keys[1:] > keys[:-1]):
                raise AsrkdError(f"LM order {k + 1}: rows not sorted by (prefix, word) or duplicated")
            self.keys.append(keys)

    # ---- sizes and ids -------------------------------------------------------------------
    @property
    def order(self) -> int:
        return len(self.word)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def bos(self) -> int:
        return self.index[BOS]

    @property
    def eos(self) -> int:
        return self.index[EOS]

    @property
    def unk(self) -> int:
        """Id of ``<unk>`` (or ``<UNK>``), or -1 for a closed-vocabulary model."""
        for w in UNK_SPELLINGS:
            if w in self.index:
                return self.index[w]
        return -1

    def num_ngrams(self) -> list[int]:
        """N-grams per order (rows that are only contexts are not counted; ``<s>`` is)."""
        return [int(np.count_nonzero(~np.isnan(lp))) for lp in self.logp]

    def word_ids(self, words: Sequence[str]) -> np.ndarray:
        """Ids of ``words``; a word outside the vocabulary gets ``<unk>``'s id (-1 without it)."""
        unk = self.unk
        return np.array([self.index.get(w, unk) for w in words], dtype=np.int64)

    def in_vocab(self, word: str) -> bool:
        """Is ``word`` a vocabulary word (``<unk>`` itself is not one: it stands for the rest)?"""
        return word in self.index and word not in UNK_SPELLINGS

    # ---- lookups ------------------------------------------------------------------------
    def find(self, order: int, keys: np.ndarray) -> np.ndarray:
        """Rows of order ``order`` with the given keys (``prefix * V + word``); -1 where absent."""
        return find_sorted(self.keys[order - 1], keys)

    def rows_of(self, ngrams: np.ndarray) -> np.ndarray:
        """Rows of the n-grams ``ngrams (n, k)`` (word ids, -1 allowed) at order k; -1 where absent."""
        ngrams = np.asarray(ngrams, dtype=np.int64)
        n, k = ngrams.shape
        if k == 0 or k > self.order:
            return np.full(n, -1, dtype=np.int64)
        row = np.where(ngrams[:, 0] >= 0, ngrams[:, 0], -1)
        V = self.vocab_size
        for j in range(1, k):
            ok = (row >= 0) & (ngrams[:, j] >= 0)
            found = self.find(j + 1, np.where(ok, row, 0) * V + np.where(ok, ngrams[:, j], 0))
            row = np.where(ok, found, -1)
        return row

    def logprob_ids(self, words: np.ndarray, contexts: np.ndarray) -> np.ndarray:
        """log10 p(word | context) for each query, with backoff.

        ``words: (n,)`` ids (-1: a word with probability 0, -inf); ``contexts: (n, L)`` ids,
        oldest first, left-padded with -1 (only the last ``order - 1`` columns are used; a -1
        cuts the history there). Returns ``(n,)`` float64.
        """
        words = np.asarray(words, dtype=np.int64)
        contexts = np.asarray(contexts, dtype=np.int64).reshape(len(words), -1)
        n, N, V = len(words), self.order, self.vocab_size
        out = np.zeros(n)
        done = words < 0
        out[done] = -np.inf
        L = min(N - 1, contexts.shape[1])
        for j in range(L, -1, -1):  # longest history first
            if j == 0:
                rows = np.where(done, -1, words)
                lp = self.logp[0][np.maximum(rows, 0)]
                hit = (rows >= 0) & ~np.isnan(lp)
                out[hit] += lp[hit]
                out[~done & ~hit] = -np.inf  # a word id with no unigram (a context-only row)
                break
            ctx = self.rows_of(contexts[:, contexts.shape[1] - j:])
            live = ~done & (ctx >= 0)
            g = np.full(n, -1, dtype=np.int64)
            g[live] = self.find(j + 1, ctx[live] * V + words[live])
            lp = np.full(n, np.nan)
            lp[g >= 0] = self.logp[j][g[g >= 0]]
            hit = live & ~np.isnan(lp)
            out[hit] += lp[hit]
            done |= hit
            back = live & ~hit
            out[back] += self.bow[j - 1][ctx[back]]
        return out

    def logprob(self, word: str, history: Sequence[str] = ()) -> float:
        """log10 p(word | history); ``history`` oldest first, may start with ``<s>``."""
        w = self.word_ids([word])
        h = self.word_ids(list(history)[-(self.order - 1):] if self.order > 1 else [])
        return float(self.logprob_ids(w, h.reshape(1, -1))[0])

    # ---- whole tables -------------------------------------------------------------------
    def ngram_ids(self, order: int) -> np.ndarray:
        """``(M_k, k)`` word ids of every row of order ``k``, oldest word first."""
        ids = self.word[0].reshape(-1, 1)
        for k in range(2, order + 1):
            ids = np.column_stack([ids[self.prefix[k - 1]], self.word[k - 1]])
        return ids

    def suffix_rows(self, order: int) -> np.ndarray:
        """``(M_k,)`` row at order k - 1 of each order-k row without its first word (-1: absent;
        order 1: zeros, the empty context)."""
        suffix = np.zeros(len(self.word[0]), dtype=np.int64)
        V = self.vocab_size
        for k in range(2, order + 1):
            s = suffix[self.prefix[k - 1]]
            ok = s >= 0
            found = self.find(k - 1, np.where(ok, s, 0) * V + self.word[k - 1])
            suffix = np.where(ok, found, -1)
        return suffix

    def has_children(self, order: int) -> np.ndarray:
        """``(M_k,)`` bool: the row is the context of a longer n-gram (it needs a backoff weight)."""
        out = np.zeros(len(self.word[order - 1]), dtype=bool)
        if order < self.order:
            out[self.prefix[order]] = True
        return out
