"""The tied-state interface (asrkd.lang.tree): the context-independent inventory as a tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asrkd.lang.inventory import LangConfig, make_lang
from asrkd.lang.tree import BOUNDARY, MonophoneTree


def test_monophone_tree_is_the_lang_inventory(tmp_path: Path) -> None:
    lang = make_lang(["ab ba", "abc"], tmp_path / "lang", LangConfig(unit_type="grapheme"))
    tree = MonophoneTree(lang)
    assert tree.num_pdfs == lang.num_classes
    c = np.arange(lang.num_classes)
    units, states = lang.class_unit[c], lang.class_state[c]
    rng = np.random.default_rng(0)
    for _ in range(3):  # any context, boundaries included, gives the same pdf
        left = rng.integers(BOUNDARY, len(lang.units), size=c.size)
        right = rng.integers(BOUNDARY, len(lang.units), size=c.size)
        np.testing.assert_array_equal(tree.pdfs(left, units, right, states), c)
    with pytest.raises(ValueError):
        tree.pdfs(np.array([0]), np.array([1]), np.array([0]), np.array([lang.states_per_unit]))
