"""Flat-start embedded Viterbi training of the Gaussian aligner, and aligning sets with it.

Schedule (Kaldi ``train_mono.sh`` in spirit):

1. every utterance gets its graph (:mod:`asrkd.align.graph`); utterances whose words have no
   units (OOV for a lexicon) fail here and are listed;
2. *equal alignment*: leading and trailing silence from a frame-energy threshold, the rest split
   evenly over the word states (no inter-word silence yet);
3. per iteration: accumulate statistics on the current alignment (its average log-likelihood
   per frame is logged), re-estimate, grow the number of Gaussians, realign every utterance
   by Viterbi (scores = ``acoustic_scale`` x log-likelihood + HMM transitions); log the share of
   frames whose label changed and the failures.

:func:`align_utterances` is the model-independent part: it takes any ``score_fn(utt, classes)
-> (frames, K)`` and is what realignment with another model uses.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from asrkd.align.aligner import AlignFailure, Alignment, align_loglik
from asrkd.align.config import AlignConfig
from asrkd.align.frontend import FrontendConfig
from asrkd.align.gmm import DiagGmm, mixup_target
from asrkd.align.graph import Graph, build_graph
from asrkd.errors import AsrkdError
from asrkd.lang.inventory import Lang
from asrkd.lang.tree import ContextTree
from asrkd.logs import progress

log = logging.getLogger("asrkd.align")

ScoreFn = Callable[[str, np.ndarray], np.ndarray]  # (utt, classes (K,)) -> (frames, K) scores


def make_graphs(lang: Lang, texts: dict[str, str], utts: list[str],
                tree: ContextTree | None = None) -> tuple[dict[str, Graph], dict[str, str]]:
    """Graphs of ``utts`` (states in context: ``tree``, default the lang's own inventory) ->
    (graphs, failed {utt: reason})."""
    graphs, failed = {}, {}
    for u in utts:
        if not texts.get(u, "").split():  # would align as silence only: speech labelled silence
            failed[u] = "empty-transcript: no words to align"
            continue
        try:
            graphs[u] = build_graph(lang, lang.transcript_units(texts.get(u, "")), tree=tree)
        except AsrkdError as e:
            failed[u] = f"no-units: {e}"
    return graphs, failed


def frame_energy(feats: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Per-frame energy proxy ``(frames,)`` from aligner features (c0, or the mean log-mel bin)."""
    n_static = feats.shape[1] // (cfg.delta_order + 1)
    return feats[:, 0] if cfg.num_ceps > 0 else feats[:, :n_static].mean(1)


def equal_alignment(graph: Graph, energy: np.ndarray, vad_threshold: float) -> np.ndarray:
    """Flat-start node path ``(frames,)``: energy-trimmed silence at the edges, the speech frames
    split evenly over the word states. Raises AlignFailure if too short."""
    n_frames = energy.shape[0]
    n = len(graph.word_lengths)
    if n == 0:
        lead_n = trail_n = 0
        a, b = 0, n_frames
        nodes = graph.chain([True])
    else:
        lead_n, trail_n = graph.sil_blocks[0][1], graph.sil_blocks[-1][1]
        lo, hi = np.percentile(energy, [10, 90])
        speech = np.flatnonzero(energy > lo + vad_threshold * (hi - lo))
        a, b = (int(speech[0]), int(speech[-1]) + 1) if speech.size else (0, n_frames)
        # Silence blocks need a frame per state; otherwise the path skips them.
        if a < lead_n:
            a = 0
        if n_frames - b < trail_n:
            b = n_frames
        lead_n, trail_n = (lead_n if a > 0 else 0), (trail_n if b < n_frames else 0)
        nodes = graph.chain([a > 0] + [False] * (n - 1) + [b < n_frames])
    lead, seq, trail = nodes[:lead_n], nodes[lead_n:nodes.size - trail_n], nodes[nodes.size - trail_n:]
    if b - a < seq.size:
        raise AlignFailure(f"too-short: {n_frames} frames for {seq.size} states")
    path = np.empty(n_frames, dtype=np.int32)
    for nds, s, e in ((lead, 0, a), (seq, a, b), (trail, b, n_frames)):
        if e > s:
            k = np.arange(e - s) * nds.size // (e - s)
            path[s:e] = nds[k]
    return path


def align_utterances(
    utts: list[str], graphs: dict[str, Graph], score_fn: ScoreFn, desc: str = "align"
) -> tuple[dict[str, Alignment], dict[str, str]]:
    """Viterbi-align every utterance with any model -> (alignments, failed {utt: reason})."""
    alis, failed = {}, {}
    for u in progress(utts, total=len(utts), desc=desc):
        g = graphs[u]
        classes, node_col = np.unique(g.node_class, return_inverse=True)
        try:
            alis[u] = align_loglik(score_fn(u, classes), g, node_col.astype(np.int32))
        except AlignFailure as e:
            failed[u] = str(e)
    return alis, failed


def gmm_score_fn(gmm: DiagGmm, feats: dict[str, np.ndarray], acoustic_scale: float,
                 expanded: bool = False) -> ScoreFn:
    """Scores of a Gaussian model; ``expanded``: ``feats`` hold ``DiagGmm.expand`` arrays."""
    return lambda u, classes: gmm.loglik(feats[u], classes, expanded) * np.float32(acoustic_scale)


def train_flat_start(
    lang: Lang, feats: dict[str, np.ndarray], texts: dict[str, str], cfg: AlignConfig
) -> tuple[DiagGmm, dict[str, Alignment], dict[str, str], list[dict]]:
    """Train the aligner on ``feats`` {utt: (frames, D)} -> (model, final alignments, failed, curve).

    ``curve``: one dict per iteration {iteration, avg_loglik, changed, failed, gauss, seconds}.
    """
    utts = sorted(feats)
    graphs, failed = make_graphs(lang, texts, utts)
    allx = np.concatenate([feats[u] for u in utts]).astype(np.float64)
    gmean, gvar = allx.mean(0), allx.var(0)
    var_floor = cfg.var_floor * gvar
    del allx
    gmm = DiagGmm.init_global(lang.num_classes, gmean, gvar)

    paths: dict[str, np.ndarray] = {}
    for u in utts:
        if u in graphs:
            try:
                paths[u] = graphs[u].node_class[equal_alignment(graphs[u], frame_energy(feats[u], cfg.frontend), cfg.vad_threshold)]
            except AlignFailure as e:
                failed[u] = str(e)
    log.info("flat start: %d utterances, %d failed before training", len(paths), len(failed))
    curve: list[dict] = []
    alis: dict[str, Alignment] = {}
    xx = {u: DiagGmm.expand(feats[u]) for u in utts}
    for it in range(1, cfg.iterations + 1):
        t0 = time.monotonic()
        avg_ll = gmm.reestimate(feats, paths, var_floor,
                                mixup_target(it, cfg.mixup_iterations, lang.num_classes, cfg.max_gauss),
                                cfg.gauss_power, cfg.min_gauss_frames)
        todo = [u for u in utts if u in graphs and u not in failed]
        alis, new_failed = align_utterances(todo, graphs, gmm_score_fn(gmm, xx, cfg.acoustic_scale, True),
                                            desc=f"align iter {it}")
        changed = total = 0
        for u, a in alis.items():
            if u in paths:
                changed += int((a.classes != paths[u]).sum())
                total += a.classes.size
        # A failure (no path) keeps the utterance's previous alignment out of the statistics.
        paths = {u: a.classes for u, a in alis.items()}
        row = {"iteration": it, "avg_loglik": avg_ll, "changed": changed / max(total, 1),
               "failed": len(failed) + len(new_failed), "gauss": gmm.num_gauss,
               "seconds": time.monotonic() - t0}
        curve.append(row)
        log.info("iter %d: avg loglik/frame %.3f (alignment before the update), labels changed %.2f%%, "
                 "%d Gaussians, %d failed, %.1f s", it, avg_ll, 100 * row["changed"], gmm.num_gauss,
                 row["failed"], row["seconds"])
        if it == cfg.iterations:
            failed.update(new_failed)
    return gmm, alis, failed, curve
