"""``tree`` benchmark: building the tied-state decision tree on the LJ Speech subset.

``tree_build_s`` = wall time of tree statistics (every frame's (left, unit, right, state) context
and single-Gaussian statistics of the aligner's features) + unit clustering into questions +
the decision tree (splits and merges) + the initial one-Gaussian-per-leaf GMM, over the whole
subset (all clips, about 250k frames), median of ``--runs``. Target: <= 60 s on 2 cores.

What it needs is prepared first and not timed: the subset as one data directory, its features
(``compute-feats``), a grapheme lang (the LJ recipe's units) and a monophone alignment
(flat-start training, ``asrkd align``'s code with fewer iterations). Preparation takes minutes;
``ASRKD_BENCH_CACHE=DIR`` keeps it in ``DIR/tree`` and reuses it (every step skips when complete).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import BenchSkipped, say

ROOT = Path(__file__).resolve().parents[1]
PREP_ITERATIONS = 10  # flat-start passes of the monophone aligner (the recipe: 20)
NUM_LEAVES = 2000  # the LJ Speech range: 1,000-3,000


def prepare(corpus: Path, work: Path) -> tuple[Path, Path, Path]:
    """Data dir, lang dir and monophone model of the whole subset in ``work`` -> (data, lang, exp)."""
    from asrkd.align.flatstart import AlignConfig
    from asrkd.align.pipeline import train_and_align
    from asrkd.data.datadir import read_table
    from asrkd.data.datatools import combine_data
    from asrkd.features.compute import compute_feats
    from asrkd.fileio import is_done
    from asrkd.lang.inventory import LangConfig, make_lang

    data = work / "data"
    train = data / "all"
    if not (train / "text").is_file():  # the recipe's data preparation, its three sets joined
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        subprocess.run([sys.executable, str(ROOT / "data_prep" / "ljspeech.py"), str(corpus), str(data)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        combine_data(train, [data / s for s in ("train", "dev", "test")])
    compute_feats(train, nj=2)
    lang_dir = work / "lang"
    if not is_done(lang_dir):
        make_lang(list(read_table(train / "text").values()), lang_dir, LangConfig(unit_type="grapheme"))
    exp = work / "exp" / "mono"
    train_and_align(train, lang_dir, "mono", exp, AlignConfig(iterations=PREP_ITERATIONS))
    return train, lang_dir, exp


def run(args: argparse.Namespace) -> dict[str, float]:
    corpus = Path(args.data) / "ljspeech" / "LJSpeech-1.1"
    if not (corpus / "metadata.csv").is_file() or not (corpus / "wavs").is_dir():
        raise BenchSkipped(f"no LJ Speech subset at {corpus}")
    cache = os.environ.get("ASRKD_BENCH_CACHE")
    with tempfile.TemporaryDirectory(prefix="asrkd-bench-tree-") as tmp:
        work = Path(cache) / "tree" if cache else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        logging.getLogger("asrkd").setLevel(logging.WARNING)
        t0 = time.perf_counter()
        train, lang_dir, _ = prepare(corpus, work)
        say(f"[bench] tree: data, features and monophone alignment ready in {time.perf_counter() - t0:.0f} s ({work})")
        return measure(train, lang_dir, args.runs)


def measure(train: Path, lang_dir: Path, runs: int) -> dict[str, float]:
    """Time statistics + questions + tree + initial GMM (features and labels already in memory)."""
    from asrkd.align.frontend import FrontendConfig, load_features
    from asrkd.align.treebuild import TreeConfig, build_tree, leaf_gmm
    from asrkd.align.treestats import accumulate_tree_stats
    from asrkd.framestore import FrameStore
    from asrkd.lang.inventory import load_lang

    lang = load_lang(lang_dir)
    labels = FrameStore(train / "labels" / "mono")
    t0 = time.perf_counter()
    # The aligner's features as its training computed them (default front end, the set's own floor).
    feats, _, _ = load_features(train, sorted(labels.keys()), FrontendConfig())
    load_s = time.perf_counter() - t0
    items = [(np.asarray(labels[u]), feats[u]) for u in sorted(feats)]
    dim = next(iter(feats.values())).shape[1]
    cfg = TreeConfig(num_leaves=NUM_LEAVES)
    walls, out = [], {}
    for i in range(max(1, runs)):
        t0 = time.perf_counter()
        stats = accumulate_tree_stats(lang, items, dim)
        t1 = time.perf_counter()
        tree, report = build_tree(stats, lang, cfg)
        t2 = time.perf_counter()
        gmm = leaf_gmm(tree, stats, cfg.var_floor)
        walls.append(time.perf_counter() - t0)
        say(f"[bench] tree run {i + 1}: {walls[-1]:.2f} s (statistics {t1 - t0:.2f} s, tree {t2 - t1:.2f} s, "
            f"GMM {walls[-1] - (t2 - t0):.2f} s): {report.num_pdfs} pdfs, {gmm.num_gauss} Gaussians")
        out = {"tree_stats_s": round(t1 - t0, 3), "tree_split_merge_s": round(t2 - t1, 3)}
    frames = report.frames
    say(f"[bench] tree: {frames:.0f} frames, {stats.count.size} contexts, {report.questions} questions, "
        f"{report.split_leaves} leaves split ({report.stop}), {report.num_pdfs} pdfs; log-likelihood/frame "
        f"{report.loglik_roots / frames:.3f} (one Gaussian per state) -> {report.loglik_final / frames:.3f}")
    return {
        "tree_build_s": round(statistics.median(walls), 3),
        **out,
        "tree_feats_load_s": round(load_s, 3),
        "tree_frames": frames,
        "tree_contexts": float(stats.count.size),
        "tree_num_pdfs": float(report.num_pdfs),
        "tree_split_leaves": float(report.split_leaves),
        "tree_loglik_per_frame_mono": round(report.loglik_roots / frames, 4),
        "tree_loglik_per_frame_tied": round(report.loglik_final / frames, 4),
    }
