"""Tied context-dependent HMM states: which pdf (class id) a unit state takes in a context.

A hybrid system's classes are *pdfs*: HMM states of units in their left/right context, tied by a
decision tree (Kaldi's ``ContextDependency``, context width 3, central position 1). Every
consumer of frame labels goes through this one interface:

- alignment builds an utterance's state graph from ``pdfs(left, unit, right, state)``;
- the decoding graph (H) maps each context window of the lexicon's units to its pdfs;
- training, caching and evaluation only see class ids in ``[0, num_pdfs)``.

The context-independent inventory of ``data/lang`` is the special case of a tree with one leaf per
unit state (:class:`MonophoneTree`: pdf = ``lang.unit_offset[unit] + state``). Contexts are unit ids
of the lang (silence, unit 0, is a context like any other) or :data:`BOUNDARY` at an utterance's
edges. Every context, seen in training or not, maps to a pdf.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from asrkd.lang.inventory import Lang

BOUNDARY = -1  # left/right context at the start/end of an utterance


class ContextTree(Protocol):
    """A total map (left, unit, right, state) -> pdf id."""

    num_units: int  # U: units of the lang (unit 0 = silence)
    num_pdfs: int  # number of tied states (the classifier's output size)
    unit_states: np.ndarray  # (U,) int32: emitting HMM states of each unit

    def pdfs(self, left: np.ndarray, unit: np.ndarray, right: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Vectorised lookup; all arguments int arrays of one shape ``(...)`` -> pdf ids ``(...)`` int32.

        ``left``/``right`` are unit ids or :data:`BOUNDARY`; ``state`` is in ``[0, unit_states[unit])``.
        """
        ...


class MonophoneTree:
    """The context-independent inventory as a tree: one leaf per unit state, context ignored."""

    def __init__(self, lang: Lang) -> None:
        self.num_units = len(lang.units)
        self.num_pdfs = lang.num_classes
        self._offset = np.asarray(lang.unit_offset, dtype=np.int32)  # (U,)
        self.unit_states = np.asarray(lang.unit_num_states, dtype=np.int32)  # (U,)

    def pdfs(self, left: np.ndarray, unit: np.ndarray, right: np.ndarray, state: np.ndarray) -> np.ndarray:
        unit = np.asarray(unit, dtype=np.int64)
        state = np.asarray(state, dtype=np.int64)
        if np.any(state < 0) or np.any(state >= self.unit_states[unit]):
            raise ValueError("HMM state out of range for its unit")
        return (self._offset[unit] + state).astype(np.int32)
