"""Offline grapheme-to-phoneme conversion: a joint-sequence (graphone) n-gram model trained on the
lexicon itself (Bisani & Ney 2008; the Phonetisaurus recipe: EM many-to-many alignment, an n-gram
over the aligned graphones, best-path decoding).

Training (:func:`train_g2p`, a few seconds on CMUdict): words spelt with the lexicon's alphabet
are aligned letter-to-phone by EM (:mod:`asrkd.lang.g2p_align`); the Viterbi graphone sequences
train an interpolated modified Kneser-Ney n-gram (:mod:`asrkd.lang.g2p_ngram`). Decoding
(:meth:`G2P.pronounce`) searches the graphone sequences that spell the word for the most probable
one under the n-gram (a beam over letter positions, recombining equal n-gram histories; numba);
its phone side is the pronunciation. Deterministic: no randomness, ties broken by order.

Any normalised word (:mod:`asrkd.text`) gets a pronunciation: letters outside the training
alphabet are folded to ASCII (``É`` -> ``E``), a digit is read as its name when the lexicon has
it (``5`` -> the pronunciation of ``FIVE``), other characters are dropped. A word left with
nothing pronounceable (e.g. ``日本`` with CMUdict) is an error.

The model is saved as one ``.npz`` (:meth:`G2P.save`), so the lang directory carries it and its
checksum (no network, no training at decode time).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from pathlib import Path

import numba
import numpy as np

from asrkd.errors import AsrkdError
from asrkd.lang.g2p_align import em_align, num_phone_chunks
from asrkd.lang.g2p_ngram import node_orders, score_token, train_kn

log = logging.getLogger("asrkd.lang.g2p")

DIGIT_NAMES = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
# Chosen on 1,000 held-out CMUdict words of another sample (seed 1; the reported figure uses seed
# 0), phone error rates: one-letter graphones at order 5 / 7 / 8 / 10: 7.74 / 6.39 / 6.41 / 6.39 %;
# graphones of 1-2 letters at order 6: 6.95 % (all sizes), 6.67 % (no 2:2), 6.55 % (no 2:0 and
# 2:2), one-letter ones 6.47 %; 3 / 5 / 10 EM iterations 6.43 / 6.39 / 6.39 %; beam 8: +0.1 %.
DEFAULT_ORDER = 7  # graphone n-gram order
DEFAULT_BEAM = 32  # hypotheses kept per letter position
EM_ITERATIONS = 5
# Graphone sizes allowed by the alignment, [letters][phones]: one letter to 0, 1 or 2 phones.
ALLOWED = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], bool)


class G2P:
    """A trained joint-sequence G2P. ``arrays`` is the saved form (see :func:`train_g2p`)."""

    def __init__(self, arrays: dict[str, np.ndarray], beam: int = DEFAULT_BEAM):
        self.arrays = arrays
        self.letters = [str(x) for x in arrays["letters"]]
        self.phones = [str(x) for x in arrays["phones"]]
        self._letter_id = {c: i for i, c in enumerate(self.letters)}
        self.beam = beam
        a = arrays
        self._model = (a["keys"], a["logp"], a["bow"], a["suffix"], a["order_start"],
                       node_orders(a["order_start"]), int(a["order"]) - 1, int(a["V"]))
        self._digits = {str(d): [str(p) for p in pron.split()] for d, pron in
                        zip("0123456789", a["digit_prons"]) if pron}

    @classmethod
    def load(cls, path: Path | str) -> "G2P":
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    def save(self, path: Path | str) -> None:
        with open(path, "wb") as f:
            np.savez(f, **self.arrays)  # uncompressed: loads fast

    def spellable(self, word: str) -> str:
        """The word folded onto the model's alphabet and decimal digits (module docstring)."""
        out = []
        for ch in word.upper():
            for c in ch if ch in self._letter_id else unicodedata.normalize("NFKD", ch):
                if c in self._letter_id or c.isdecimal():
                    out.append(c)
        return "".join(out)

    def pronounce(self, word: str) -> list[str]:
        """Phones of ``word`` (a normalised word: upper case)."""
        phones: list[str] = []
        for run in re.findall(r"\d|\D+", self.spellable(word)):
            if run.isdecimal():
                phones += self._digits.get(str(unicodedata.decimal(run)), [])
            else:
                phones += self._decode(run)
        if not phones:
            raise AsrkdError(f"word {word!r}: no letter the G2P can pronounce")
        return phones

    def _decode(self, letters: str) -> list[str]:
        a = self.arrays
        x = np.array([self._letter_id[c] for c in letters], np.int64)
        toks = _beam_decode(x, len(self.letters), a["cand_ptr"], a["cand_tok"], *self._model, self.beam)
        if toks.shape[0] == 0:
            raise AsrkdError(f"G2P found no pronunciation for {letters!r}")
        out = []
        for t in toks:
            out += [self.phones[p] for p in a["tok_phones"][t] if p >= 0]
        return out


@numba.njit(cache=True)
def _beam_decode(x, L, cand_ptr, cand_tok, keys, logp, bow, suffix, order_start, node_order,
                 max_hist, V, beam):
    """Best graphone token sequence spelling ``x`` (letter ids (I,)); (n,) int64, empty if none.

    Hypotheses live in one pool; those ending at letter position ``i`` are recombined (one per
    n-gram history, the best) and pruned to ``beam`` before they are extended by the graphones of
    ``x[i]`` and ``x[i:i+2]``.
    """
    I = x.shape[0]
    bos, eos = V - 2, V - 1
    max_c = 0
    for c in range(cand_ptr.shape[0] - 1):
        max_c = max(max_c, cand_ptr[c + 1] - cand_ptr[c])
    cap = 1 + I * beam * 2 * max_c
    h_pos = np.empty(cap, np.int64)
    h_state = np.empty(cap, np.int64)
    h_score = np.empty(cap)
    h_prev = np.empty(cap, np.int64)
    h_tok = np.empty(cap, np.int64)
    h_pos[0], h_state[0], h_score[0], h_prev[0], h_tok[0] = 0, 1 + bos, 0.0, -1, -1
    n = 1
    best, best_score = -1, -np.inf
    for i in range(I + 1):
        idx = np.nonzero(h_pos[:n] == i)[0]
        if idx.shape[0] == 0:
            continue
        order = np.argsort(-h_score[idx], kind="mergesort")
        kept = np.empty(beam, np.int64)
        nk = 0
        for o in order:
            hyp = idx[o]
            dup = False
            for q in range(nk):
                if h_state[kept[q]] == h_state[hyp]:
                    dup = True
                    break
            if not dup:
                kept[nk] = hyp
                nk += 1
                if nk == beam:
                    break
        for q in range(nk):
            hyp = kept[q]
            if i == I:
                lp, _ = score_token(keys, logp, bow, suffix, order_start, node_order, max_hist,
                                    h_state[hyp], eos, V)
                if h_score[hyp] + lp > best_score:
                    best_score = h_score[hyp] + lp
                    best = hyp
                continue
            for a in (1, 2):
                if i + a > I:
                    break
                lc = x[i] if a == 1 else L + x[i] * L + x[i + 1]
                for c in range(cand_ptr[lc], cand_ptr[lc + 1]):
                    tok = cand_tok[c]
                    lp, nxt = score_token(keys, logp, bow, suffix, order_start, node_order, max_hist,
                                          h_state[hyp], tok, V)
                    h_pos[n], h_state[n], h_score[n], h_prev[n], h_tok[n] = i + a, nxt, h_score[hyp] + lp, hyp, tok
                    n += 1
    m = 0
    h = best
    while h > 0:
        m += 1
        h = h_prev[h]
    out = np.empty(m, np.int64)
    h = best
    while h > 0:
        m -= 1
        out[m] = h_tok[h]
        h = h_prev[h]
    return out


def train_g2p(lexicon: dict[str, list[str]], order: int = DEFAULT_ORDER) -> G2P:
    """Train on ``lexicon`` ({WORD: phones}); words with characters other than letters and the
    apostrophe (``A.D.``, ``A-OK``, digits) are not training material (normalised text splits or
    drops those characters)."""
    t0 = time.perf_counter()
    words = trainable_words(lexicon)
    if not words:
        raise AsrkdError("G2P: the lexicon has no word made of letters to train on")
    letters = sorted({c for w in words for c in w})
    phones = sorted({p for w in words for p in lexicon[w]})
    lid = {c: i for i, c in enumerate(letters)}
    pid = {p: i for i, p in enumerate(phones)}
    L, P = len(letters), len(phones)
    x = np.array([lid[c] for w in words for c in w], np.int64)
    x_ptr = np.concatenate([[0], np.cumsum([len(w) for w in words])]).astype(np.int64)
    y = np.array([pid[p] for w in words for p in lexicon[w]], np.int64)
    y_ptr = np.concatenate([[0], np.cumsum([len(lexicon[w]) for w in words])]).astype(np.int64)
    graphones, g_ptr, logtheta = em_align(x, x_ptr, y, y_ptr, L, P, EM_ITERATIONS, ALLOWED)
    aligned = int(np.sum(np.diff(g_ptr) > 0))
    t1 = time.perf_counter()

    # Token vocabulary: the graphones of the alignments, plus for every letter its most probable
    # single-letter graphone (a letter seen only inside two-letter chunks, e.g. Q of QU, must
    # still be pronounceable alone).
    npc = num_phone_chunks(P)
    single = np.array([lc * npc + int(np.argmax(logtheta[lc * npc:(lc + 1) * npc])) for lc in range(L)])
    vocab, seq = np.unique(np.concatenate([graphones, single]), return_inverse=True)
    seq = seq[: len(graphones)]
    V = len(vocab) + 2  # + BOS, EOS
    lens = np.diff(g_ptr)
    starts = np.concatenate([[0], np.cumsum(lens[lens > 0])]).astype(np.int64)  # unaligned words dropped
    model = train_kn(seq.astype(np.int64), starts, V, order)
    # Stored compactly (~20 bytes per n-gram): float32 log-probabilities are ample for a search.
    model.update(logp=model["logp"].astype(np.float32), bow=model["bow"].astype(np.float32),
                 suffix=model["suffix"].astype(np.int32))
    lc_of = vocab // npc
    order_lc = np.argsort(lc_of, kind="stable")
    cand_ptr = np.searchsorted(lc_of[order_lc], np.arange(L + L * L + 1)).astype(np.int64)
    tok_phones = np.full((len(vocab), 2), -1, np.int64)
    pc = vocab % npc
    one = (pc >= 1) & (pc <= P)
    two = pc > P
    tok_phones[one, 0] = pc[one] - 1
    tok_phones[two, 0] = (pc[two] - 1 - P) // P
    tok_phones[two, 1] = (pc[two] - 1 - P) % P
    digit_prons = np.array([" ".join(lexicon.get(n, [])) for n in DIGIT_NAMES])
    arrays = dict(model, letters=np.array(letters), phones=np.array(phones), cand_ptr=cand_ptr,
                  cand_tok=order_lc.astype(np.int64), tok_phones=tok_phones, digit_prons=digit_prons)
    log.info("G2P: %d words (%d aligned), %d letters, %d phones, %d graphones, order %d, %d n-grams; "
             "alignment %.1f s, total %.1f s", len(words), aligned, L, P, len(vocab), order,
             len(model["keys"]), t1 - t0, time.perf_counter() - t0)
    return G2P(arrays)


def trainable_words(lexicon: dict[str, list[str]]) -> list[str]:
    """Sorted words that :func:`train_g2p` learns from (letters and apostrophes only)."""
    return sorted(w for w, p in lexicon.items() if p and w.replace("'", "").isalpha())


def held_out_split(lexicon: dict[str, list[str]], n: int, seed: int = 0
                   ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``(train, held_out)``: a fixed seeded sample of ``n`` trainable words held out."""
    words = trainable_words(lexicon)
    if n > len(words):
        raise AsrkdError(f"cannot hold out {n} of {len(words)} words")
    pick = set(np.array(words)[np.random.default_rng(seed).choice(len(words), n, replace=False)].tolist())
    train = {w: p for w, p in lexicon.items() if w not in pick}
    return train, {w: lexicon[w] for w in sorted(pick)}
