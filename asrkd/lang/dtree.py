"""The decision tree of tied context-dependent states (Kaldi's ``ContextDependency`` with context
width 3): a :class:`asrkd.lang.tree.ContextTree` built by :mod:`asrkd.align.treebuild`, and its files.

Structure. Every (unit, state) belongs to one *root* (Kaldi's ``roots.txt``): a root covers a set
of units and some of their HMM states; a root that is not split is one leaf. Inner nodes ask one
question: is the value of a *key* (left unit, right unit, central unit or HMM state) in a set?
Left/right values are unit ids or :data:`asrkd.lang.tree.BOUNDARY`; every question is a set, so
every context (seen in training or not) follows the answers down to exactly one leaf. Each leaf
carries a pdf id; after the merge step several leaves can share a pdf.

Files in a lang directory (written by :func:`save_tree`; ``tree.json`` last, so its presence
means the three are complete):

``tree.json``
    ``{"format": "asrkd-tree", "version": 1, "lang_fingerprint", "units": [names],
    "unit_states": [S_u], "num_pdfs", "roots": [{"units": [names], "states": [s], "split", "node"}],
    "questions": [[member names]], "nodes": {"key", "question", "yes", "no", "pdf"} (parallel
    lists; key -1 = leaf), "pdf_frames": [training frames per pdf], "config": {...},
    "fingerprint"}``. ``fingerprint`` = sha256 of the rest (canonical JSON).
``questions.txt``
    ``<question id> <member> ...`` per line (``<bnd>`` = utterance boundary).
``pdfs.txt``
    The pdf inventory: ``<pdf id> <training frames> <unit>/<state> ...`` (the unit states whose
    trees reach the pdf).

Consumers check :func:`tied_fingerprint` (lang + tree), not the lang's alone: a label store,
model or cache made with one tree is refused with another.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, atomic_write_text, read_json
from asrkd.lang.inventory import Lang
from asrkd.lang.tree import BOUNDARY, ContextTree, MonophoneTree

FORMAT = "asrkd-tree"
VERSION = 1
TREE_FILE = "tree.json"
BOUNDARY_NAME = "<bnd>"  # the utterance boundary in questions.txt / extra_questions.txt

LEAF, LEFT, RIGHT, UNIT, STATE = -1, 0, 1, 2, 3  # node keys: what a question asks about
KEY_NAMES = {LEFT: "left", RIGHT: "right", UNIT: "unit", STATE: "state"}


def value_column(value: np.ndarray | int) -> np.ndarray | int:
    """Column of a key value in the question table: ``value + 1`` (BOUNDARY -> 0)."""
    return value + 1


class DecisionTree:
    """A total map (left, unit, right, state) -> pdf, stored as arrays.

    ``roots``: list of dicts ``{"units": [ids], "states": [ids], "split": bool}``; ``root_node (R,)``
    the node each root starts at; ``questions (Q, W)`` bool membership by :func:`value_column`;
    per node ``key, question, yes, no, pdf (N,)`` int32 (``key = LEAF``: a leaf with pdf ``pdf``).
    """

    def __init__(self, lang: Lang, roots: list[dict], root_node: np.ndarray, questions: np.ndarray,
                 key: np.ndarray, question: np.ndarray, yes: np.ndarray, no: np.ndarray, pdf: np.ndarray,
                 pdf_frames: np.ndarray, config: dict[str, Any] | None = None) -> None:
        self.units = list(lang.units)
        self.num_units = len(lang.units)
        self.unit_states = np.asarray(lang.unit_num_states, dtype=np.int32)
        self.lang_fingerprint = lang.fingerprint
        self.roots = [{"units": [int(u) for u in r["units"]], "states": [int(s) for s in r["states"]],
                       "split": bool(r["split"])} for r in roots]
        self.root_node = np.asarray(root_node, dtype=np.int32)
        self.questions = np.asarray(questions, dtype=bool)
        self.key = np.asarray(key, dtype=np.int32)
        self.question = np.asarray(question, dtype=np.int32)
        self.yes = np.asarray(yes, dtype=np.int32)
        self.no = np.asarray(no, dtype=np.int32)
        self.pdf = np.asarray(pdf, dtype=np.int32)
        self.pdf_frames = np.asarray(pdf_frames, dtype=np.float64)
        self.config = dict(config or {})
        leaves = self.key == LEAF
        self.num_pdfs = int(self.pdf[leaves].max()) + 1 if leaves.any() else 0
        self._check()
        self.root_of = np.full((self.num_units, int(self.unit_states.max())), -1, dtype=np.int32)
        for r, root in enumerate(self.roots):
            for u in root["units"]:
                for s in root["states"]:
                    if s < self.unit_states[u]:
                        if self.root_of[u, s] >= 0:
                            raise AsrkdError(f"tree: {self.units[u]}/{s} is in two roots")
                        self.root_of[u, s] = self.root_node[r]
        valid = np.arange(self.root_of.shape[1])[None, :] < self.unit_states[:, None]
        if (self.root_of[valid] < 0).any():
            u, s = np.argwhere(valid & (self.root_of < 0))[0]
            raise AsrkdError(f"tree: {self.units[u]}/{s} has no root")
        self.fingerprint = hashlib.sha256(json.dumps(self._body(), sort_keys=True).encode("utf-8")).hexdigest()

    def _check(self) -> None:
        N = self.key.shape[0]
        inner = self.key != LEAF
        if not all(a.shape == (N,) for a in (self.question, self.yes, self.no, self.pdf)):
            raise AsrkdError("tree: node arrays differ in length")
        if (self.key < LEAF).any() or (self.key > STATE).any():
            raise AsrkdError("tree: unknown node key")
        for a in (self.yes, self.no):
            if inner.any() and (a[inner].min() < 0 or a[inner].max() >= N):
                raise AsrkdError("tree: child node out of range")
        if inner.any() and (self.question[inner].min() < 0 or self.question[inner].max() >= self.questions.shape[0]):
            raise AsrkdError("tree: question id out of range")
        used = np.zeros(self.num_pdfs, dtype=bool)
        used[self.pdf[~inner]] = True
        if (self.pdf[~inner] < 0).any() or not used.all():
            raise AsrkdError("tree: leaf pdf ids are not 0 .. num_pdfs-1")
        if self.pdf_frames.shape != (self.num_pdfs,):
            raise AsrkdError("tree: pdf_frames does not match the number of pdfs")
        if self.questions.shape[1] < max(self.num_units, int(self.unit_states.max())) + 1:
            raise AsrkdError("tree: question table narrower than the units/states")

    # --- the ContextTree interface --------------------------------------------------------

    def pdfs(self, left: np.ndarray, unit: np.ndarray, right: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Vectorised lookup: int arrays of one shape ``(...)`` -> pdf ids ``(...)`` int32."""
        left, unit, right, state = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (left, unit, right, state)))
        shape = unit.shape
        left, unit, right, state = (a.ravel() for a in (left, unit, right, state))
        if unit.size == 0:
            return np.zeros(shape, dtype=np.int32)
        U = self.num_units
        if unit.min() < 0 or unit.max() >= U:
            raise ValueError("unit id out of range")
        if state.min() < 0 or (state >= self.unit_states[unit]).any():
            raise ValueError("HMM state out of range for its unit")
        for a in (left, right):
            if a.min() < BOUNDARY or a.max() >= U:
                raise ValueError("context unit out of range")
        cols = value_column(np.stack([left, right, unit, state]))  # (4, n): indexed by key
        node = self.root_of[unit, state]
        idx = np.flatnonzero(self.key[node] != LEAF)
        while idx.size:
            n = node[idx]
            ans = self.questions[self.question[n], cols[self.key[n], idx]]
            node[idx] = np.where(ans, self.yes[n], self.no[n])
            idx = idx[self.key[node[idx]] != LEAF]
        return self.pdf[node].reshape(shape)

    @property
    def num_leaves(self) -> int:
        return int((self.key == LEAF).sum())

    # --- files ---------------------------------------------------------------------------------

    def _value_name(self, col: int) -> str:
        return BOUNDARY_NAME if col == 0 else self.units[col - 1] if col - 1 < self.num_units else str(col - 1)

    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "lang_fingerprint": self.lang_fingerprint,
            "units": self.units,
            "unit_states": self.unit_states.tolist(),
            "num_pdfs": self.num_pdfs,
            "roots": [{"units": [self.units[u] for u in r["units"]], "states": r["states"], "split": r["split"],
                       "node": int(n)} for r, n in zip(self.roots, self.root_node)],
            "questions": [[int(c) for c in np.flatnonzero(q)] for q in self.questions],
            "question_width": int(self.questions.shape[1]),
            "nodes": {"key": self.key.tolist(), "question": self.question.tolist(), "yes": self.yes.tolist(),
                      "no": self.no.tolist(), "pdf": self.pdf.tolist()},
            "pdf_frames": [round(float(f), 3) for f in self.pdf_frames],
            "config": self.config,
        }

    def pdf_members(self) -> list[list[tuple[int, int]]]:
        """For each pdf, the (unit, state) pairs whose trees reach it."""
        out: list[set[tuple[int, int]]] = [set() for _ in range(self.num_pdfs)]
        for r, root in enumerate(self.roots):
            stack = [int(self.root_node[r])]
            pdfs = set()
            while stack:
                n = stack.pop()
                if self.key[n] == LEAF:
                    pdfs.add(int(self.pdf[n]))
                else:
                    stack += [int(self.yes[n]), int(self.no[n])]
            for p in pdfs:
                out[p].update((u, s) for u in root["units"] for s in root["states"] if s < self.unit_states[u])
        return [sorted(m) for m in out]


def save_tree(tree: DecisionTree, directory: Path) -> None:
    """Write ``questions.txt``, ``pdfs.txt`` and (last) ``tree.json`` into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / TREE_FILE).unlink(missing_ok=True)
    atomic_write_text(d / "questions.txt", "".join(
        f"{i} {' '.join(tree._value_name(int(c)) for c in np.flatnonzero(q))}\n" for i, q in enumerate(tree.questions)))
    atomic_write_text(d / "pdfs.txt", "".join(
        f"{p} {tree.pdf_frames[p]:.0f} {' '.join(f'{tree.units[u]}/{s}' for u, s in m)}\n"
        for p, m in enumerate(tree.pdf_members())))
    atomic_write_json(d / TREE_FILE, {**tree._body(), "fingerprint": tree.fingerprint})


def has_tree(directory: Path) -> bool:
    return (Path(directory) / TREE_FILE).is_file()


def load_tree(directory: Path, lang: Lang) -> DecisionTree:
    """Read ``directory/tree.json``; refuses a tree built for another lang or edited by hand."""
    path = Path(directory) / TREE_FILE
    if not path.is_file():
        raise AsrkdError(f"no decision tree at {path}")
    meta = read_json(path)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise AsrkdError(f"{path}: not an asrkd tree file (version {VERSION})")
    if meta["lang_fingerprint"] != lang.fingerprint or meta["units"] != list(lang.units):
        raise AsrkdError(f"{path} was built for another lang than {lang.directory} (fingerprint differs)")
    q = np.zeros((len(meta["questions"]), meta["question_width"]), dtype=bool)
    for i, cols in enumerate(meta["questions"]):
        q[i, cols] = True
    index = {u: i for i, u in enumerate(lang.units)}
    roots = [{"units": [index[u] for u in r["units"]], "states": r["states"], "split": r["split"]} for r in meta["roots"]]
    nodes = meta["nodes"]
    tree = DecisionTree(lang, roots, np.array([r["node"] for r in meta["roots"]]), q, nodes["key"],
                        nodes["question"], nodes["yes"], nodes["no"], nodes["pdf"], meta["pdf_frames"], meta["config"])
    if tree.fingerprint != meta["fingerprint"]:
        raise AsrkdError(f"{path}: fingerprint does not match its content (edited by hand?)")
    return tree


def context_tree(lang: Lang, directory: Path | None = None) -> ContextTree:
    """The lang's classes: the decision tree in ``directory`` (default: the lang directory) if
    there is one, else the context-independent :class:`MonophoneTree`."""
    d = Path(directory) if directory is not None else Path(lang.directory)
    return load_tree(d, lang) if has_tree(d) else MonophoneTree(lang)


def tied_fingerprint(lang: Lang, tree: ContextTree) -> str:
    """Fingerprint of the class inventory ``lang`` + ``tree``: what label stores, models and caches
    record. The context-independent tree keeps the lang's own fingerprint (stores made before
    trees existed stay valid); a decision tree's changes it whenever the tree changes."""
    if isinstance(tree, MonophoneTree):
        return lang.fingerprint
    fp = getattr(tree, "fingerprint", None)
    if not fp or getattr(tree, "lang_fingerprint", None) != lang.fingerprint:
        raise AsrkdError(f"the tree was not built for the lang {lang.directory}")
    return hashlib.sha256(f"{lang.fingerprint}+{fp}".encode()).hexdigest()
