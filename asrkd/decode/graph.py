"""The decoding graph: unit HMMs and the network of units they are strung along.

Two plain-array structures feed the numba search (:mod:`asrkd.decode.search`):

- :class:`UnitHmms`: per unit, a left-to-right chain of emitting states (the alignment topology):
  state ``s`` of unit ``u`` emits class ``cls[u, s]``, loops with ``self_lp[u, s]`` and moves on
  with ``fwd_lp[u, s]`` (from the last state: leaves the unit).
- :class:`UnitGraph`: nodes, each carrying one unit; after a node's last HMM state the search
  enters one of its successors: the explicit ones (CSR ``succ_start``/``succ_node``) and, when
  ``to_roots[n]``, every node of ``roots`` (shared, so a free loop costs no quadratic arc list).
  ``roots`` are also where an utterance starts; ``final[n]`` marks nodes it may end after.
  Silence nodes (``is_sil``) are invisible to the LM and cost ``silence_logp`` instead of the
  insertion penalty.

Two graphs are built here: :func:`unit_loop_graph` (any unit after any unit, optional silence
between them) and :func:`word_list_graph` (a prefix tree of the words of a word list, so only
those words can come out, each word end looping back to the roots, optional silence between words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from asrkd.errors import AsrkdError


@dataclass
class UnitHmms:
    """Left-to-right HMM per unit. ``num_states (U,)``; ``cls, self_lp, fwd_lp (U, Smax)``."""

    num_states: np.ndarray
    cls: np.ndarray
    self_lp: np.ndarray
    fwd_lp: np.ndarray

    def __post_init__(self) -> None:
        self.num_states = np.ascontiguousarray(self.num_states, dtype=np.int32)
        self.cls = np.ascontiguousarray(self.cls, dtype=np.int32)
        self.self_lp = np.ascontiguousarray(self.self_lp, dtype=np.float32)
        self.fwd_lp = np.ascontiguousarray(self.fwd_lp, dtype=np.float32)
        U = len(self.num_states)
        if self.cls.ndim != 2 or self.cls.shape[0] != U:
            raise AsrkdError(f"UnitHmms: cls must be (U={U}, Smax), got {self.cls.shape}")
        if self.self_lp.shape != self.cls.shape or self.fwd_lp.shape != self.cls.shape:
            raise AsrkdError("UnitHmms: cls, self_lp, fwd_lp must have the same shape")
        if U and (self.num_states.min() < 1 or self.num_states.max() > self.cls.shape[1]):
            raise AsrkdError("UnitHmms: every unit needs 1..Smax states")

    @property
    def num_units(self) -> int:
        return len(self.num_states)

    @property
    def max_states(self) -> int:
        return self.cls.shape[1]

    def with_min_duration(self, frames: int) -> "UnitHmms":
        """The same HMMs with every state lasting at least ``frames`` frames.

        Each state becomes a chain of ``frames`` copies emitting its class (as a Kaldi topology
        with a minimum duration): the first ``frames - 1`` copies must move on, the last keeps
        the state's loop and exit probabilities. A word of S states then needs ``S * frames``
        frames, so a short burst of speech-like sound cannot pass for a whole word.
        Returns ``(U, Smax * frames)`` arrays; ``frames == 1`` returns ``self``.
        """
        if frames < 1:
            raise AsrkdError(f"min_state_frames must be >= 1, got {frames}")
        if frames == 1:
            return self
        cls = np.repeat(self.cls, frames, axis=1)
        self_lp = np.full(cls.shape, -np.inf, dtype=np.float32)
        fwd_lp = np.zeros(cls.shape, dtype=np.float32)
        self_lp[:, frames - 1::frames] = self.self_lp
        fwd_lp[:, frames - 1::frames] = self.fwd_lp
        return UnitHmms(self.num_states * frames, cls, self_lp, fwd_lp)

    @classmethod
    def uniform(cls, num_units: int, states_per_unit: int, self_prob: float = 0.5) -> "UnitHmms":
        """Every unit ``states_per_unit`` states, class ``u * S + s``, the same loop probability."""
        S = states_per_unit
        classes = np.arange(num_units * S, dtype=np.int32).reshape(num_units, S)
        self_lp = np.full((num_units, S), np.log(self_prob), dtype=np.float32)
        fwd_lp = np.full((num_units, S), np.log(1.0 - self_prob), dtype=np.float32)
        return cls(np.full(num_units, S, dtype=np.int32), classes, self_lp, fwd_lp)


@dataclass
class UnitGraph:
    """Unit network (see module docstring). All arrays indexed by node (N,) except ``roots``,
    ``succ_node``. ``node_word[n]``: id of the word that may end at ``n`` (word lists), else -1."""

    node_unit: np.ndarray
    is_sil: np.ndarray
    final: np.ndarray
    to_roots: np.ndarray
    succ_start: np.ndarray
    succ_node: np.ndarray
    roots: np.ndarray
    node_word: np.ndarray
    words: list[str]

    def __post_init__(self) -> None:
        self.node_unit = np.ascontiguousarray(self.node_unit, dtype=np.int32)
        self.is_sil = np.ascontiguousarray(self.is_sil, dtype=np.bool_)
        self.final = np.ascontiguousarray(self.final, dtype=np.bool_)
        self.to_roots = np.ascontiguousarray(self.to_roots, dtype=np.bool_)
        self.succ_start = np.ascontiguousarray(self.succ_start, dtype=np.int32)
        self.succ_node = np.ascontiguousarray(self.succ_node, dtype=np.int32)
        self.roots = np.ascontiguousarray(self.roots, dtype=np.int32)
        self.node_word = np.ascontiguousarray(self.node_word, dtype=np.int32)
        if len(self.roots) == 0:
            raise AsrkdError("decoding graph has no start node")

    @property
    def num_nodes(self) -> int:
        return len(self.node_unit)

    def max_successors(self) -> int:
        explicit = np.diff(self.succ_start)
        most = int(explicit.max()) if len(explicit) else 0
        return most + len(self.roots)


def unit_loop_graph(
    num_units: int,
    silence_unit: int | None = None,
    allowed: np.ndarray | None = None,
    word_start: np.ndarray | None = None,
) -> UnitGraph:
    """Free loop over units: node ``u`` carries unit ``u`` (so node ids = unit ids), plus an
    optional-silence node carrying ``silence_unit``.

    ``allowed (U,)`` bool: units that may be output (e.g. not ``<unk>``; the silence unit is
    never output as a unit). ``word_start (U,)`` bool: units that may follow silence (e.g.
    sentencepiece pieces that start a word); default all.
    """
    allowed = np.ones(num_units, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if silence_unit is not None:
        allowed = allowed.copy()
        allowed[silence_unit] = False
    ws = np.ones(num_units, dtype=bool) if word_start is None else np.asarray(word_start, dtype=bool)
    units = np.flatnonzero(allowed).astype(np.int32)
    if len(units) == 0:
        raise AsrkdError("no unit may be output by the decoding graph")
    node_unit = list(range(num_units))
    is_sil = [False] * num_units
    final = allowed.tolist()
    to_roots = allowed.tolist()
    roots = units.tolist()
    succ: list[list[int]] = [[] for _ in range(num_units)]
    if silence_unit is not None:
        sil = num_units  # a separate node, so the silence unit's own node stays unused
        node_unit.append(silence_unit)
        is_sil.append(True)
        final.append(True)
        to_roots.append(False)
        succ.append([int(u) for u in units if ws[u]])
        roots.append(sil)
    return _finish(node_unit, is_sil, final, to_roots, succ, roots, [-1] * len(node_unit), [])


def word_list_graph(
    word_units: dict[str, Sequence[int]], silence_unit: int | None = None
) -> UnitGraph:
    """Prefix tree over the unit sequences of a word list; only these words can be decoded.

    ``word_units``: ``{word: unit ids}``. Words with the same units (homophones) share an end
    node; the first in sorted order is the one output.
    """
    if not word_units:
        raise AsrkdError("empty word list")
    node_unit: list[int] = []
    children: list[dict[int, int]] = []
    node_word: list[int] = []
    root_children: dict[int, int] = {}
    words = sorted(word_units)
    for wid, w in enumerate(words):
        units = [int(u) for u in word_units[w]]
        if not units:
            raise AsrkdError(f"word {w!r} has no units")
        level = root_children
        node = -1
        for u in units:
            node = level.get(u, -1)
            if node < 0:
                node = len(node_unit)
                node_unit.append(u)
                children.append({})
                node_word.append(-1)
                level[u] = node
            level = children[node]
        if node_word[node] < 0:
            node_word[node] = wid
    n = len(node_unit)
    is_sil = [False] * n
    final = [node_word[i] >= 0 for i in range(n)]
    to_roots = list(final)
    succ = [sorted(ch.values()) for ch in children]
    roots = sorted(root_children.values())
    if silence_unit is not None:
        # Silence may follow a word end (it is a root) and goes on to a word start, not into
        # itself (it already loops inside its HMM).
        node_unit.append(silence_unit)
        is_sil.append(True)
        final.append(True)
        to_roots.append(False)
        succ.append(list(roots))
        node_word.append(-1)
        roots = roots + [n]
    return _finish(node_unit, is_sil, final, to_roots, succ, roots, node_word, words)


def _finish(node_unit, is_sil, final, to_roots, succ, roots, node_word, words) -> UnitGraph:  # noqa: ANN001
    succ_start = np.zeros(len(node_unit) + 1, dtype=np.int32)
    succ_start[1:] = np.cumsum([len(s) for s in succ])
    flat = [m for s in succ for m in s]
    return UnitGraph(np.array(node_unit), np.array(is_sil), np.array(final), np.array(to_roots),
                     succ_start, np.array(flat, dtype=np.int32), np.array(roots), np.array(node_word),
                     list(words))
