"""Boundary accuracy of alignments against reference CTMs (``asrkd score-ali``).

For each utterance in both CTMs whose token sequences agree (silence tokens dropped on both
sides, case folded, reference tokens optionally mapped), the start and end time of every token
are boundaries; the score is the share of hypothesis boundaries within 20 ms and 50 ms of the
reference ones, and their mean absolute error. Utterances whose sequences differ (another phone
set, a different transcript) are counted, not scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asrkd.align.ctm import Segment

SILENCE_TOKENS = frozenset({"<sil>", "sil", "sp", "spn", "pau", "h#", "#", "<eps>"})
TOLERANCES_MS = (20, 50)


@dataclass
class BoundaryScore:
    utterances: int  # scored
    mismatched: int  # in both CTMs, token sequences differ
    missing: int  # in the reference, absent from the hypothesis
    boundaries: int
    within: dict[int, float]  # tolerance ms -> % of boundaries
    mae_ms: float

    def to_dict(self) -> dict:
        d = {"utterances": self.utterances, "mismatched": self.mismatched, "missing": self.missing,
             "boundaries": self.boundaries, "mae_ms": self.mae_ms}
        d.update({f"within_{t}ms": v for t, v in self.within.items()})
        return d


def _speech(segs: list[Segment], mapping: dict[str, str] | None) -> list[Segment]:
    out = []
    for tok, s, e in segs:
        t = tok.lower()
        if mapping is not None:
            t = mapping.get(t, t)
        if t in SILENCE_TOKENS:
            continue
        out.append((t, s, e))
    return out


def score_boundaries(
    hyp: dict[str, list[Segment]], ref: dict[str, list[Segment]], mapping: dict[str, str] | None = None
) -> BoundaryScore:
    """Compare ``hyp`` and ``ref`` CTMs ({utt: [(token, start_s, end_s)]}).

    ``mapping``: reference token -> hypothesis token (lower case), e.g. to strip stress marks or
    to map a TTS phone set onto the lexicon's.
    """
    errs: list[float] = []
    scored = mismatched = missing = 0
    for utt in sorted(ref):
        if utt not in hyp:
            missing += 1
            continue
        r = _speech(ref[utt], mapping)
        h = _speech(hyp[utt], None)
        if [t for t, _, _ in r] != [t for t, _, _ in h]:
            mismatched += 1
            continue
        scored += 1
        for (_, rs, re_), (_, hs, he) in zip(r, h):
            errs.append(abs(hs - rs))
            errs.append(abs(he - re_))
    e = np.asarray(errs) * 1000.0
    n = int(e.size)
    within = {t: (100.0 * float((e <= t + 1e-6).mean()) if n else float("nan")) for t in TOLERANCES_MS}
    return BoundaryScore(scored, mismatched, missing, n, within, float(e.mean()) if n else float("nan"))
