"""L: the lexicon transducer (units -> words) with optional silence and disambiguation symbols.

The words are the LM's vocabulary; each gets the units the lang's tokenizer gives it (letters for
graphemes, pieces for sentencepiece, lexicon + G2P for phones), so a word that never occurred in
the training transcripts is decodable as soon as the LM has it. Words the lang cannot spell
(a unit outside the inventory, ``<unk>`` pieces) are left out and counted.

Disambiguation (Kaldi's ``add_lex_disambig.pl``): a pronunciation shared by several words
(homophones) or that is a proper prefix of another gets ``#1``, ``#2``, ... appended, so that
``L o G`` is determinizable; ``#0`` (G's backoff symbol) passes through L as a ``#0:#0`` loop.

Topology (Kaldi's ``make_lexicon_fst.py`` with ``sil_prob``): state 0 starts, state 1 is the
loop state (final) that words leave from and return to, state 2 is entered after a word (or at the
start) that is followed by silence, and goes on to 1 through the silence unit. Going into silence
costs ``-log sil_prob``, not going ``-log(1 - sil_prob)``: silence is optional at the start,
between words and at the end, as in alignment (:mod:`asrkd.lang.inventory`).

Labels: input ``0`` epsilon, unit ``u`` is ``u + 1``, ``#k`` is ``num_units + 1 + k``; output: the
word ids of ``words.txt``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from asrkd.errors import AsrkdError

log = logging.getLogger("asrkd.decode.lexicon_fst")


@dataclass
class Lexicon:
    """``prons``: ``(word, unit ids, k)`` per decodable word, ``k`` its disambiguation symbol
    ``#k`` (0: none); ``num_disambig``: K, so ``#0..#K`` exist; ``skipped``: words left out."""

    prons: list[tuple[str, list[int], int]]
    num_disambig: int
    skipped: list[str]


def word_pronunciations(lang, words: Sequence[str]) -> Lexicon:  # noqa: ANN001
    """Units of every word the lang can spell, with disambiguation symbols (module docstring)."""
    from asrkd.decode.decoder import lang_word_units

    unk = {i for i, u in enumerate(lang.units) if u == "<unk>"}
    spelled = lang_word_units(lang, words)
    prons = {w: u for w, u in spelled.items() if not unk.intersection(u) and lang.silence_unit not in u}
    skipped = sorted(set(words) - set(prons))
    if not prons:
        raise AsrkdError("no word of the LM vocabulary can be spelled with the lang's units")
    count = Counter(tuple(p) for p in prons.values())
    prefixes = {tuple(p[:i]) for p in prons.values() for i in range(1, len(p))}
    last: Counter = Counter()
    out = []
    for w in sorted(prons):
        p = tuple(prons[w])
        k = 0
        if count[p] > 1 or p in prefixes:
            last[p] += 1
            k = last[p]
        out.append((w, list(p), k))
    return Lexicon(out, max(last.values(), default=0), skipped)


def lexicon_fst(lex: Lexicon, word_ids: dict[str, int], num_units: int, silence_unit: int,
                sil_prob: float, word_disambig0: int):  # noqa: ANN201
    """Build L (module docstring) as a kaldifst ``StdVectorFst``; ``word_disambig0``: the id of
    ``#0`` in ``words.txt`` (output side of the ``#0:#0`` loop)."""
    import kaldifst

    if not 0.0 < sil_prob < 1.0:
        raise AsrkdError(f"sil_prob must be in (0, 1), got {sil_prob}")
    sil_cost, no_sil_cost = -math.log(sil_prob), -math.log1p(-sil_prob)
    disambig0 = num_units + 1
    fst = kaldifst.StdVectorFst()
    start, loop, sil = fst.add_state(), fst.add_state(), fst.add_state()
    fst.start = start
    fst.add_arc(start, kaldifst.StdArc(0, 0, no_sil_cost, loop))
    fst.add_arc(start, kaldifst.StdArc(0, 0, sil_cost, sil))
    fst.add_arc(sil, kaldifst.StdArc(silence_unit + 1, 0, 0.0, loop))
    for word, units, k in lex.prons:
        labels = [u + 1 for u in units] + ([disambig0 + k] if k else [])
        wid = word_ids[word]
        cur = loop
        for i, lab in enumerate(labels[:-1]):
            nxt = fst.add_state()
            fst.add_arc(cur, kaldifst.StdArc(lab, wid if i == 0 else 0, 0.0, nxt))
            cur = nxt
        out = wid if len(labels) == 1 else 0
        fst.add_arc(cur, kaldifst.StdArc(labels[-1], out, no_sil_cost, loop))
        fst.add_arc(cur, kaldifst.StdArc(labels[-1], out, sil_cost, sil))
    fst.set_final(loop, 0.0)
    # #0:#0 loops wherever a word is output or the FST may end, so G's backoff arcs pass through.
    kaldifst.add_self_loops(fst, [disambig0], [word_disambig0])
    return fst
