#!/usr/bin/env python
"""The project's one benchmark entry point.

    python tools/bench.py [--only KEY ...] [--runs N]

Progress goes to stderr; the last line of stdout is ONE JSON object with every measured figure
(e.g. ``feats_xrt_1core``) and, if any benchmark could not run, ``"skipped": {key: reason}``
(its figures are then absent, never faked).

Adding a benchmark: write ``tools/bench_<area>.py`` with ``run(args) -> dict[str, float]``
(raise :class:`BenchSkipped` when its data is missing) and add one line to ``BENCHES``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/bench_*.py modules

from bench_common import BenchSkipped, say  # noqa: E402

Bench = Callable[[argparse.Namespace], dict[str, float]]


def _entry(module: str) -> Bench:
    """A registry entry that imports ``tools/<module>.py`` only when its benchmark runs."""

    def run(args: argparse.Namespace) -> dict[str, float]:
        return importlib.import_module(module).run(args)

    return run


BENCHES: dict[str, Bench] = {
    "export": _entry("bench_export"),  # export_max_abs_diff_*, export_frames_per_s_1thread_*: the exported student (TorchScript, ONNX)
    "feats": _entry("bench_feats"),  # feats_xrt_1core: decode + resample + fbank + write, x real time
    "decode": _entry("bench_graph"),  # decode_rtf (word graph, LJ test transcripts, 1 core, tuned beam) + decode_wer, graph_build_s, hclg_states/arcs
    "unit_decode": _entry("bench_decode"),  # unit_lm_decode_rtf: the unit-LM decoder's search time / audio time + its WER
    "align": _entry("bench_align"),  # align_frames_per_s: banded Viterbi, tied-state graph (~360 states), 650-frame utterances, one core
    "distill": _entry("bench_distill"),  # cache_bytes_per_frame, dense_fp32_bytes_per_frame, distill_epoch_over_hard_epoch, online_epoch_over_cached_epoch
    "scoring": _entry("bench_scoring"),  # score_seconds_2620: WER + CER of 2,620 utterances
    "tree": _entry("bench_tree"),  # tree_build_s: tree statistics + decision tree + one Gaussian per leaf on the LJ Speech subset
    "train": _entry("bench_train"),  # {bf16,fp32}_matmul_tflops (the precision training picks here), train_frames_per_s_{hinton2015,cpu}, train_mfu_hinton2015, loader_overhead_frac
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=sorted(BENCHES), metavar="KEY",
                   help=f"run only these benchmarks (of {', '.join(sorted(BENCHES))})")
    p.add_argument("--runs", type=int, default=5, help="timed repetitions per benchmark (median reported)")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data",
                   help="the shared corpora folder (default ../shared/data)")
    p.add_argument("--lm-arpa", type=Path, default=None,
                   help="decode: the LJ Speech word LM (ARPA) for the graph (e.g. asrkd train-lm's)")
    args = p.parse_args(argv)
    results: dict[str, object] = {}
    skipped: dict[str, str] = {}
    for key in args.only or sorted(BENCHES):
        say(f"[bench] {key} ...")
        t0 = time.monotonic()
        try:
            results.update(BENCHES[key](args))
        except BenchSkipped as e:
            skipped[key] = str(e)
            say(f"[bench] {key}: skipped: {e}")
            continue
        say(f"[bench] {key}: done in {time.monotonic() - t0:.1f} s")
    if skipped:
        results["skipped"] = skipped
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
