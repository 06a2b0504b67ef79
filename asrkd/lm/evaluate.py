"""Perplexity and OOV rate of a text under a backoff LM.

Conventions (SRILM's ``ngram -ppl``): each sentence is scored as ``<s> w1 .. wn </s>``; the
predicted tokens are the words and ``</s>``. A word outside the vocabulary (an OOV) is not
scored and is left out of the perplexity, but stays in the history of the words after it (as
``<unk>``; without ``<unk>`` in the LM it cuts the history):

    ppl = 10 ** (-logprob / (words - oovs + sentences))

``ppl_with_oov`` scores every OOV as ``<unk>`` (KenLM's "perplexity including OOVs"), for a
model that has ``<unk>``. ``oov_rate = oovs / words`` (``</s>`` not counted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from asrkd.lm.model import BOS, EOS, BackoffLM


@dataclass(frozen=True)
class TextScore:
    sentences: int  # sentences scored
    words: int  # word tokens (</s> not counted)
    oovs: int  # word tokens outside the vocabulary
    logprob: float  # log10 probability of the scored tokens (in-vocabulary words and </s>)
    ppl: float | None  # perplexity, OOVs left out (None: nothing scored)
    ppl_with_oov: float | None  # perplexity with OOVs scored as <unk> (None: no <unk> in the LM)
    oov_rate: float | None  # oovs / words (None: no words)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sentence_queries(lm: BackoffLM, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LM queries of ``sentences``: ``words (n,)`` ids of every predicted token,
    ``contexts (n, order-1)`` their histories (-1 before ``<s>``), ``oov (n,)`` bool."""
    toks: list[str] = []
    pos: list[int] = []
    for s in sentences:
        toks += [BOS, *s, EOS]
        pos += range(len(s) + 2)
    ids = lm.word_ids(toks)
    oov = np.array([not lm.in_vocab(t) and t != BOS for t in toks], dtype=bool)
    position = np.array(pos, dtype=np.int64)
    target = np.flatnonzero(position > 0)
    H = lm.order - 1
    contexts = np.full((len(target), H), -1, dtype=np.int64)
    for j in range(H):  # column j: the word (H - j) positions back
        back = H - j
        ok = position[target] >= back
        contexts[ok, j] = ids[target[ok] - back]
    return ids[target], contexts, oov[target]


def score_text(lm: BackoffLM, sentences: Sequence[Sequence[str]]) -> TextScore:
    """Perplexity and OOV rate of ``sentences`` (lists of words, normalised like the LM text)."""
    words, contexts, oov = sentence_queries(lm, sentences)
    lp = lm.logprob_ids(words, contexts) if len(words) else np.zeros(0)
    n_sent = len(sentences)
    n_words = len(words) - n_sent
    n_oov = int(np.count_nonzero(oov))
    logprob = float(lp[~oov].sum())
    scored = n_words - n_oov + n_sent
    ppl = 10.0 ** (-logprob / scored) if scored > 0 else None
    ppl_oov = None
    if lm.unk >= 0 and len(words):
        ppl_oov = 10.0 ** (-float(lp.sum()) / len(words))
    return TextScore(n_sent, n_words, n_oov, logprob, ppl, ppl_oov,
                     n_oov / n_words if n_words > 0 else None)
