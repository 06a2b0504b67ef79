"""The class inventory frame labels are made of: a lang directory and its tree.

``data/lang`` (``asrkd make-units``) has one class per unit HMM state: the tree with one leaf per
unit state (:class:`~asrkd.lang.tree.MonophoneTree`). ``asrkd align`` with triphones writes the
tied-state lang ``data/lang_tri`` beside it (:func:`write_tied_lang`): a copy of the lang's files
plus the decision tree's (``tree.json``, ``questions.txt``, ``pdfs.txt``: the pdf inventory, see
:mod:`asrkd.lang.dtree`); its classes are the tree's pdfs. Every label store, model and cache
records the inventory's fingerprint (:func:`~asrkd.lang.dtree.tied_fingerprint`: the lang's own
for the context-independent inventory, lang + tree for a tied one), so the two are never mixed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.lang.dtree import TREE_FILE, DecisionTree, context_tree, save_tree, tied_fingerprint
from asrkd.lang.inventory import Lang, load_lang
from asrkd.lang.tree import ContextTree, MonophoneTree

TREE_FILES = (TREE_FILE, "questions.txt", "pdfs.txt")  # what save_tree writes


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
        """``(num_classes,)`` the context-independent class (unit state) of each class, or None
        when some pdf serves several unit states (roots shared across units or states)."""
        if not self.tied:
            return np.arange(self.num_classes, dtype=np.int32)
        assert isinstance(self.tree, DecisionTree)
        out = np.full(self.num_classes, -1, dtype=np.int32)
        for p, members in enumerate(self.tree.pdf_members()):
            if len(members) != 1:
                return None
            u, s = members[0]
            out[p] = self.lang.unit_offset[u] + s
        return out


def load_inventory(directory: Path | str) -> Inventory:
    """``data/lang`` or ``data/lang_tri`` -> :class:`Inventory` (checks completeness and
    fingerprints of the lang and of its tree)."""
    d = Path(directory)
    lang = load_lang(d)
    tree = context_tree(lang)
    return Inventory(d, lang, tree, int(tree.num_pdfs), tied_fingerprint(lang, tree))


def write_tied_lang(out_dir: Path, lang: Lang, tree: DecisionTree) -> Inventory:
    """Write ``out_dir`` (``data/lang_tri``): ``lang``'s files and ``tree``'s, replacing any old
    directory only once the new one is complete (built beside it, then renamed)."""
    out_dir = Path(out_dir)
    src = Path(lang.directory)
    if out_dir.resolve() == src.resolve():
        raise AsrkdError(f"the tied-state lang must not replace its lang {src}")
    tmp = out_dir.parent / f".{out_dir.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(*TREE_FILES))
    save_tree(tree, tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    inv = load_inventory(out_dir)
    if not inv.tied:
        raise AsrkdError(f"{out_dir}: the tree was not written")
    return inv
