"""Boundary scoring against reference CTMs."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrkd.align.ctm import read_ctm, write_ctm
from asrkd.align.score_ali import score_boundaries


def test_known_offsets() -> None:
    ref = {"u1": [("SIL", 0.0, 0.3), ("HELLO", 0.3, 0.7), ("WORLD", 0.7, 1.2), ("SIL", 1.2, 1.5)]}
    # Every boundary 30 ms late, silences absent: 4 boundaries, none within 20 ms, all within 50.
    hyp = {"u1": [("hello", 0.33, 0.73), ("world", 0.73, 1.23)]}
    s = score_boundaries(hyp, ref)
    assert (s.utterances, s.boundaries) == (1, 4)
    assert s.within[20] == 0.0 and s.within[50] == 100.0
    assert s.mae_ms == pytest.approx(30.0)
    # One boundary 60 ms off -> 75% within 50 ms.
    hyp["u1"][1] = ("world", 0.73, 1.26)
    assert score_boundaries(hyp, ref).within[50] == pytest.approx(75.0)


def test_mismatch_missing_and_mapping() -> None:
    ref = {"a": [("hh", 0.0, 0.1), ("ah0", 0.1, 0.2)], "b": [("x", 0.0, 0.1)], "c": [("y", 0.0, 0.1)]}
    hyp = {"a": [("HH", 0.0, 0.1), ("AH", 0.1, 0.2)], "b": [("z", 0.0, 0.1)]}
    s = score_boundaries(hyp, ref)
    assert (s.utterances, s.mismatched, s.missing) == (0, 2, 1)
    s = score_boundaries(hyp, ref, mapping={"ah0": "ah"})
    assert (s.utterances, s.boundaries, s.within[20]) == (1, 4, 100.0)


def test_ctm_round_trip(tmp_path: Path) -> None:
    ctm = {"u2": [("B", 0.5, 0.75)], "u1": [("A", 0.0075, 0.4175), ("C", 0.5, 1.0)]}
    write_ctm(tmp_path / "x.ctm", ctm)
    assert (tmp_path / "x.ctm").read_text().splitlines()[0] == "u1 1 0.0075 0.4100 A"
    back = read_ctm(tmp_path / "x.ctm")
    assert back["u1"][1] == ("C", 0.5, 1.0) and back["u2"] == [("B", 0.5, 0.75)]
