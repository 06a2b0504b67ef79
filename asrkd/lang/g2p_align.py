"""Many-to-many letter/phone alignment of a lexicon by EM (the first step of the joint-sequence G2P).

A *graphone* pairs a chunk of 1-2 letters with a chunk of 0-2 phones (Bisani & Ney 2008;
Phonetisaurus' default ``seq1_max = seq2_max = 2``, letters may map to nothing, phones may not
appear without a letter). Every pronunciation is a sequence of graphones whose letter side spells
the word and whose phone side is the pronunciation. EM estimates a joint distribution over
graphones (forward-backward over each word's (letter, phone) lattice); the Viterbi segmentation
under the final distribution is the training corpus of the graphone n-gram model.

Ids: letters ``0..L-1``, phones ``0..P-1``. A letter chunk of one letter ``l`` is ``l``; of two
letters ``L + l1 * L + l2``. A phone chunk of no phone is 0, of one ``1 + p``, of two
``1 + P + p1 * P + p2``. Graphone ``g = letter_chunk * NPC + phone_chunk`` with
``NPC = 1 + P + P * P``. Words are flat arrays: ``letters[word_ptr[w]:word_ptr[w+1]]``.
"""

from __future__ import annotations

import logging

import numba
import numpy as np

log = logging.getLogger("asrkd.lang.g2p")

MAX_LETTERS = 2  # letters per graphone (1..2)
MAX_PHONES = 2  # phones per graphone (0..2)


def num_letter_chunks(L: int) -> int:
    return L + L * L


def num_phone_chunks(P: int) -> int:
    return 1 + P + P * P


@numba.njit(cache=True, inline="always")
def _letter_chunk(letters: np.ndarray, i: int, a: int, L: int) -> int:
    """Id of the chunk ``letters[i:i+a]`` (a = 1 or 2)."""
    if a == 1:
        return letters[i]
    return L + letters[i] * L + letters[i + 1]


@numba.njit(cache=True, inline="always")
def _phone_chunk(phones: np.ndarray, j: int, b: int, P: int) -> int:
    """Id of the chunk ``phones[j:j+b]`` (b = 0, 1 or 2)."""
    if b == 0:
        return 0
    if b == 1:
        return 1 + phones[j]
    return 1 + P + phones[j] * P + phones[j + 1]


@numba.njit(cache=True)
def _em_step(letters, word_ptr, phones, pron_ptr, theta, L, P, max_a, counts) -> float:
    """One E-step: add each word's expected graphone counts to ``counts`` (same shape as
    ``theta``, flat ``(NLC * NPC,)``); returns the total log-likelihood. Probability space is
    safe here: lattices are at most a few dozen steps of probabilities >= 1e-12."""
    npc = 1 + P + P * P
    total_ll = 0.0
    for w in range(word_ptr.shape[0] - 1):
        x = letters[word_ptr[w]:word_ptr[w + 1]]
        y = phones[pron_ptr[w]:pron_ptr[w + 1]]
        I, J = x.shape[0], y.shape[0]
        alpha = np.zeros((I + 1, J + 1))
        beta = np.zeros((I + 1, J + 1))
        alpha[0, 0] = 1.0
        for i in range(I + 1):
            for j in range(J + 1):
                if alpha[i, j] == 0.0:
                    continue
                for a in range(1, max_a + 1):
                    if i + a > I:
                        break
                    lc = _letter_chunk(x, i, a, L)
                    for b in range(0, MAX_PHONES + 1):
                        if j + b > J:
                            break
                        alpha[i + a, j + b] += alpha[i, j] * theta[lc * npc + _phone_chunk(y, j, b, P)]
        z = alpha[I, J]
        if z <= 0.0:
            continue  # no segmentation (more than 2 phones per letter somewhere): skipped
        total_ll += np.log(z)
        beta[I, J] = 1.0
        for i in range(I, -1, -1):
            for j in range(J, -1, -1):
                if i == I and j == J:
                    continue
                s = 0.0
                for a in range(1, max_a + 1):
                    if i + a > I:
                        break
                    lc = _letter_chunk(x, i, a, L)
                    for b in range(0, MAX_PHONES + 1):
                        if j + b > J:
                            break
                        s += theta[lc * npc + _phone_chunk(y, j, b, P)] * beta[i + a, j + b]
                beta[i, j] = s
        for i in range(I + 1):
            for j in range(J + 1):
                if alpha[i, j] == 0.0:
                    continue
                for a in range(1, max_a + 1):
                    if i + a > I:
                        break
                    lc = _letter_chunk(x, i, a, L)
                    for b in range(0, MAX_PHONES + 1):
                        if j + b > J:
                            break
                        g = lc * npc + _phone_chunk(y, j, b, P)
                        counts[g] += alpha[i, j] * theta[g] * beta[i + a, j + b] / z
    return total_ll


@numba.njit(cache=True)
def _viterbi(letters, word_ptr, phones, pron_ptr, logtheta, L, P, max_a, out_g, out_ptr) -> None:
    """Best segmentation of every word: graphone ids into ``out_g[out_ptr[w]:out_ptr[w+1]]``
    (``out_ptr`` is filled here; a word with no segmentation gets none)."""
    npc = 1 + P + P * P
    n = 0
    for w in range(word_ptr.shape[0] - 1):
        out_ptr[w] = n
        x = letters[word_ptr[w]:word_ptr[w + 1]]
        y = phones[pron_ptr[w]:pron_ptr[w + 1]]
        I, J = x.shape[0], y.shape[0]
        score = np.full((I + 1, J + 1), -np.inf)
        back_a = np.zeros((I + 1, J + 1), np.int64)
        back_b = np.zeros((I + 1, J + 1), np.int64)
        score[0, 0] = 0.0
        for i in range(I + 1):
            for j in range(J + 1):
                if score[i, j] == -np.inf:
                    continue
                for a in range(1, max_a + 1):
                    if i + a > I:
                        break
                    lc = _letter_chunk(x, i, a, L)
                    for b in range(0, MAX_PHONES + 1):
                        if j + b > J:
                            break
                        s = score[i, j] + logtheta[lc * npc + _phone_chunk(y, j, b, P)]
                        if s > score[i + a, j + b]:  # strict: the first (shortest) chunk wins a tie
                            score[i + a, j + b] = s
                            back_a[i + a, j + b] = a
                            back_b[i + a, j + b] = b
        if score[I, J] == -np.inf:
            continue
        # Backtrack, then write the graphones in order.
        m = 0
        i, j = I, J
        while i > 0:
            a, b = back_a[i, j], back_b[i, j]
            i -= a
            j -= b
            m += 1
        i, j = I, J
        k = n + m - 1
        while i > 0:
            a, b = back_a[i, j], back_b[i, j]
            i -= a
            j -= b
            out_g[k] = _letter_chunk(x, i, a, L) * npc + _phone_chunk(y, j, b, P)
            k -= 1
        n += m
    out_ptr[word_ptr.shape[0] - 1] = n


def chunk_mask(L: int, P: int, allowed: np.ndarray) -> np.ndarray:
    """(NLC * NPC,) bool: graphones whose (letters, phones) sizes are allowed
    (``allowed``: (MAX_LETTERS + 1, MAX_PHONES + 1) bool indexed by sizes)."""
    lc_size = np.concatenate([np.ones(L, np.int64), np.full(L * L, 2)])
    pc_size = np.concatenate([[0], np.ones(P, np.int64), np.full(P * P, 2)])
    return allowed[lc_size[:, None], pc_size[None, :]].ravel()


def em_align(
    letters: np.ndarray, word_ptr: np.ndarray, phones: np.ndarray, pron_ptr: np.ndarray,
    L: int, P: int, iterations: int = 10, allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM over graphone segmentations; returns ``(graphones, ptr, logtheta)``.

    letters: (sum of word lengths,) int32 letter ids; word_ptr: (W + 1,) offsets;
    phones: (sum of pronunciation lengths,) int32 phone ids; pron_ptr: (W + 1,).
    graphones: (total,) int64 Viterbi graphone ids per word (``ptr``: (W + 1,) offsets; a word
    with no segmentation has an empty range); logtheta: (NLC * NPC,) float64 log joint graphone
    probabilities (``-inf`` for graphones never possible).
    """
    size = num_letter_chunks(L) * num_phone_chunks(P)
    # uniform start: the first E-step counts every possible segmentation
    if allowed is None:
        allowed = np.ones((MAX_LETTERS + 1, MAX_PHONES + 1), bool)
    theta = chunk_mask(L, P, allowed).astype(np.float64)
    max_a = int(np.nonzero(allowed.any(axis=1))[0].max())  # longest letter chunk: skip the others' loops
    for it in range(iterations):
        counts = np.zeros(size)
        ll = _em_step(letters, word_ptr, phones, pron_ptr, theta, L, P, max_a, counts)
        theta = counts / max(counts.sum(), 1e-300)
        log.debug("g2p alignment EM iteration %d: log-likelihood %.1f", it + 1, ll)
    with np.errstate(divide="ignore"):
        logtheta = np.log(theta)
    out_ptr = np.zeros(word_ptr.shape[0], np.int64)
    out_g = np.zeros(int(letters.shape[0]), np.int64)  # at most one graphone per letter
    _viterbi(letters, word_ptr, phones, pron_ptr, logtheta, L, P, max_a, out_g, out_ptr)
    return out_g[: out_ptr[-1]], out_ptr, logtheta
