"""Frame contexts of a monophone alignment (asrkd.align.contexts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asrkd.align.contexts import frame_contexts
from asrkd.lang.inventory import LangConfig, make_lang
from asrkd.lang.tree import BOUNDARY


def test_frame_contexts_split_repeated_units_and_cross_words(tmp_path: Path) -> None:
    lang = make_lang(["hello all"], tmp_path / "lang", LangConfig(unit_type="grapheme"))
    u = lang.unit_id
    # no final silence: the last unit has BOUNDARY on its right
    seq = [0, u("h"), u("e"), u("l"), u("l"), u("o"), 0, u("a"), u("l"), u("l")]
    classes, want = [], []
    for i, unit in enumerate(seq):
        left = seq[i - 1] if i else BOUNDARY
        right = seq[i + 1] if i + 1 < len(seq) else BOUNDARY
        for s in range(lang.unit_num_states[unit]):
            for _ in range(1 + (i + s) % 3):  # self-loops of varying length
                classes.append(lang.unit_offset[unit] + s)
                want.append((left, unit, right, s))
    got = np.stack(frame_contexts(np.array(classes), lang), axis=1)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.array(want))


def test_frame_contexts_single_segment_and_empty(tmp_path: Path) -> None:
    lang = make_lang(["ab"], tmp_path / "lang", LangConfig(unit_type="grapheme"))
    left, unit, right, state = frame_contexts(np.array([0, 0, 1, 2]), lang)
    assert (left == BOUNDARY).all() and (right == BOUNDARY).all() and (unit == 0).all()
    np.testing.assert_array_equal(state, [0, 0, 1, 2])
    assert all(a.size == 0 for a in frame_contexts(np.zeros(0, dtype=np.int32), lang))
