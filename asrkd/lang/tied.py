"""The class inventory frame labels are made of: a lang directory and its tree.

``data/lang`` (``asrkd make-units``) has one class per unit HMM state: the tree with one leaf per
unit state (:class:`~asrkd.lang.tree.MonophoneTree`). ``asrkd align`` with triphones writes
``data/lang_tri`` beside it: the same lang files plus the decision tree, whose pdfs are the
classes. Every label store, model and cache records the inventory's fingerprint, so the two are
never mixed up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkd.lang.inventory import Lang, load_lang
from asrkd.lang.tree import ContextTree, MonophoneTree


@dataclass
class Inventory:
    directory: Path
    lang: Lang  # units, topology, tokenizer
    tree: ContextTree  # (left, unit, right, state) -> class id
    num_classes: int  # = tree.num_pdfs
    fingerprint: str  # what label stores, models and caches made on these classes record

    @property
    def tied(self) -> bool:
        """True for a context-dependent inventory (a decision tree's pdfs)."""
        return not isinstance(self.tree, MonophoneTree)

    def class_to_monophone(self) -> np.ndarray | None:
        """``(num_classes,)`` the context-independent class (unit state) each class belongs to, or
        None when some pdf serves several unit states (a tree with roots shared across units)."""
        if not self.tied:
            return np.arange(self.num_classes, dtype=np.int32)
        out = np.full(self.num_classes, -1, dtype=np.int32)
        for p, members in enumerate(self.tree.pdf_members()):  # type: ignore[attr-defined]
            if len(members) != 1:
                return None
            u, s = members[0]
            out[p] = self.lang.unit_offset[u] + s
        return out


def load_inventory(directory: Path | str) -> Inventory:
    """``data/lang`` or ``data/lang_tri`` -> :class:`Inventory` (checks completeness and
    fingerprints)."""
    d = Path(directory)
    lang = load_lang(d)
    tree = MonophoneTree(lang)
    return Inventory(d, lang, tree, tree.num_pdfs, lang.fingerprint)
