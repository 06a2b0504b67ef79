"""Benchmark of the Viterbi aligner: ``align_frames_per_s`` (frames aligned per second, one core,
Viterbi only) on a tied-state (context-dependent) graph, and ``align_mono_frames_per_s`` on the
context-independent graph of the same utterance; utterances of 650 frames.

The graphs are real utterance graphs (``asrkd.align.graph.build_graph``): 89 units x 3 states in
10 words with optional silences (3 states) at the start, the end and between words -> 300 nodes
with the context-independent inventory. The tied-state tree gives every unit state a pdf per
(left class, right class) of 4 x 4 context classes (1,968 pdfs, the size of Kaldi's tri1), so
every word boundary carries both variants on each side (the worst case for the graph's size).
Emission scores are random (the Viterbi cost does not depend on their values).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _lang(n_units: int = 40):
    """An in-memory Lang with ``n_units`` 3-state units (no files needed)."""
    from asrkd.lang.inventory import Lang, _inventory

    units = ["<sil>"] + [f"u{i}" for i in range(n_units)]
    offset, nstates, cu, cs = _inventory(units, 3, 3)
    return Lang(
        directory=Path("."), unit_type="grapheme", units=units, states_per_unit=3, sil_states=3,
        self_loop_prob=0.5, sil_prob=0.5, fingerprint="bench", num_classes=int(nstates.sum()),
        unit_offset=offset, unit_num_states=nstates, class_unit=cu, class_state=cs,
        _unit_index={u: i for i, u in enumerate(units)},
    )


class ContextClassTree:
    """Every unit state x (left class, right class), 4 context classes a side (unit id mod 4; the
    utterance edge is class 0)."""

    def __init__(self, lang) -> None:  # noqa: ANN001
        from asrkd.lang.tree import MonophoneTree

        self._mono = MonophoneTree(lang)
        self.num_units = self._mono.num_units
        self.unit_states = self._mono.unit_states
        self.num_pdfs = 16 * self._mono.num_pdfs

    def pdfs(self, left, unit, right, state):  # noqa: ANN001, ANN201
        cls = lambda x: (np.asarray(x) + 1) % 4  # noqa: E731
        return (16 * self._mono.pdfs(left, unit, right, state) + 4 * cls(left) + cls(right)).astype(np.int32)


def _rate(graph, T: int, runs: int, rng: np.random.Generator) -> float:  # noqa: ANN001
    from asrkd.align.aligner import align_loglik

    classes, col = np.unique(graph.node_class, return_inverse=True)  # as align_utterances gives it
    col = col.astype(np.int32)
    utts = [rng.normal(0, 3, (T, classes.size)).astype(np.float32) for _ in range(8)]
    align_loglik(utts[0], graph, col)  # compile
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(4):
            for ll in utts:
                align_loglik(ll, graph, col)
        rates.append(4 * len(utts) * T / (time.perf_counter() - start))
    return float(np.median(rates))


def bench_align(args: argparse.Namespace | None = None) -> dict:
    """Returns {"align_frames_per_s", "align_mono_frames_per_s", "align_graph_states",
    "align_mono_graph_states", "align_pdfs", "align_utt_frames"}.

    Numba runs the Viterbi on the calling thread only (no parallel kernels): one core."""
    from asrkd.align.graph import build_graph

    rng = np.random.default_rng(0)
    lang = _lang()
    # 10 words, 89 units in all: 267 word states + 11 optional silences x 3 = 300 nodes.
    lengths = [9] * 9 + [8]
    words = [[int(u) for u in rng.integers(1, len(lang.units), n)] for n in lengths]
    tree = ContextClassTree(lang)
    tied, mono = build_graph(lang, words, tree=tree), build_graph(lang, words)
    T = 650
    runs = max(1, int(getattr(args, "runs", 5) or 5))
    return {
        "align_frames_per_s": _rate(tied, T, runs, rng),
        "align_mono_frames_per_s": _rate(mono, T, runs, rng),
        "align_graph_states": tied.num_nodes,
        "align_mono_graph_states": mono.num_nodes,
        "align_pdfs": tree.num_pdfs,
        "align_utt_frames": T,
    }


def run(args: argparse.Namespace) -> dict:
    """tools/bench.py entry (median of ``args.runs`` timed repetitions)."""
    return bench_align(args)


if __name__ == "__main__":
    import json

    print(json.dumps(bench_align(), indent=2))
