"""Benchmark of the Viterbi aligner: ``align_frames_per_s`` (frames aligned per second, one core,
Viterbi only) on a graph of about 300 states and utterances of 650 frames.

The graph is a real utterance graph (``asrkd.align.graph.build_graph``): 89 units x 3 states in
10 words with optional silences (3 states) at the start, the end and between words -> 300 nodes.
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


def bench_align(args: argparse.Namespace | None = None) -> dict:
    """Returns {"align_frames_per_s": float, "align_graph_states": int, "align_utt_frames": int}.

    Numba runs the Viterbi on the calling thread only (no parallel kernels): one core."""
    from asrkd.align.aligner import align_loglik
    from asrkd.align.graph import build_graph

    rng = np.random.default_rng(0)
    lang = _lang()
    # 10 words, 89 units in all: 267 word states + 11 optional silences x 3 = 300 nodes.
    lengths = [9] * 9 + [8]
    words = [[int(u) for u in rng.integers(1, len(lang.units), n)] for n in lengths]
    graph = build_graph(lang, words)
    T = 650
    utts = [rng.normal(0, 3, (T, lang.num_classes)).astype(np.float32) for _ in range(8)]
    align_loglik(utts[0], graph)  # compile
    runs = max(1, int(getattr(args, "runs", 5) or 5))
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(4):
            for ll in utts:
                align_loglik(ll, graph)
        rates.append(4 * len(utts) * T / (time.perf_counter() - start))
    return {
        "align_frames_per_s": float(np.median(rates)),
        "align_graph_states": graph.num_nodes,
        "align_utt_frames": T,
    }


def run(args: argparse.Namespace) -> dict:
    """tools/bench.py entry (median of ``args.runs`` timed repetitions)."""
    return bench_align(args)


if __name__ == "__main__":
    import json

    print(json.dumps(bench_align(), indent=2))
