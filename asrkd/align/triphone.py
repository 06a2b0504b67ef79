"""The context-dependent (triphone) Gaussian system on a tree's tied states.

Schedule (Kaldi ``train_deltas.sh`` is the model; its defaults are this config's):

1. every utterance gets its context-dependent graph (:func:`asrkd.align.graph.build_graph` with
   the tree); the monophone alignment is carried onto it unchanged (same units, states and
   silences: :func:`project_path`), which maps every frame to its pdf;
2. one Gaussian per pdf, estimated from the tree statistics (Kaldi's ``gmm-init-model``,
   :func:`asrkd.align.treebuild.leaf_gmm`): the caller's ``init`` model;
3. per iteration ``it``: if ``it`` is in ``realign_iters``, Viterbi-realign every utterance with
   the current model; accumulate statistics on the alignment (its average log-likelihood per
   frame is logged), re-estimate, and grow the Gaussians linearly towards ``totgauss`` (reached
   at ``mixup_iterations``, as Kaldi's ``max_iter_inc``);
4. a last realignment with the final model gives the labels.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from asrkd.align.aligner import Alignment
from asrkd.align.config import TriphoneConfig
from asrkd.align.flatstart import align_utterances, gmm_score_fn, make_graphs
from asrkd.align.gmm import DiagGmm, mixup_target
from asrkd.align.graph import Graph
from asrkd.lang.inventory import Lang
from asrkd.lang.tree import ContextTree

log = logging.getLogger("asrkd.align")


def project_path(src: Graph, nodes: np.ndarray, dst: Graph) -> np.ndarray:
    """A path through ``src`` (nodes ``(T,)``) as the same walk - the same unit states in the same
    frames, the same optional silences - through ``dst``, a graph of the same transcript with
    other pdfs (another tree) -> ``(T,)`` int32 nodes of ``dst``."""
    n = len(src.word_lengths)
    if n != len(dst.word_lengths) or src.unit_ids != dst.unit_ids:
        raise ValueError("the two graphs are not of the same transcript")
    used = set(np.unique(src.node_sil[nodes]).tolist()) if n else {0}
    flags = [i in used for i in range(n + 1)]
    a, b = src.chain(flags), dst.chain(flags)
    if a.size != b.size:
        raise ValueError("the two graphs have another HMM topology")
    idx = np.searchsorted(a, nodes)  # a chain's nodes increase along it
    if (idx >= a.size).any() or not np.array_equal(a[np.minimum(idx, a.size - 1)], nodes):
        raise ValueError("the path leaves the chain of its own silences")
    return b[idx]


def alignment_loglik(gmm: DiagGmm, feats: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> float:
    """Average log-likelihood per frame of ``feats`` under ``gmm`` along ``labels`` {utt: (T,)}."""
    stats = gmm.accumulate_utts(feats, labels)
    return stats.loglik / stats.frames if stats.frames else float("nan")


def train_triphone(
    lang: Lang,
    tree: ContextTree,
    init: DiagGmm,
    feats: dict[str, np.ndarray],
    texts: dict[str, str],
    mono_graphs: dict[str, Graph],
    mono_alis: dict[str, Alignment],
    cfg: TriphoneConfig,
    var_floor: float,
    acoustic_scale: float,
) -> tuple[DiagGmm, dict[str, Graph], dict[str, Alignment], dict[str, str], list[dict]]:
    """Train the tied-state system from a monophone alignment -> (model, graphs, final
    alignments, failed {utt: reason}, curve). ``init``: one Gaussian per pdf of ``tree``.

    ``feats``: {utt: (T, D)} aligner features; ``mono_alis``: the monophone system's alignments
    through ``mono_graphs``; ``var_floor``: variance floor as a fraction of the global variance.
    ``curve``: one dict per iteration
    {iteration, realigned, avg_loglik, changed, failed, gauss, seconds}.
    """
    utts = sorted(mono_alis)
    graphs, failed = make_graphs(lang, texts, utts, tree)
    paths = {u: graphs[u].node_class[project_path(mono_graphs[u], mono_alis[u].nodes, graphs[u])]
             for u in utts if u in graphs}
    if init.num_classes != tree.num_pdfs:
        raise ValueError(f"initial model has {init.num_classes} classes, the tree {tree.num_pdfs} pdfs")
    gmm = DiagGmm(init.class_start, init.weight, init.mean, init.var)
    allx = np.concatenate([feats[u] for u in utts]).astype(np.float64)
    floor = var_floor * allx.var(0)
    del allx
    xx = {u: DiagGmm.expand(feats[u]) for u in paths}
    log.info("triphone: %d pdfs from %d monophone alignments", tree.num_pdfs, len(paths))
    curve: list[dict] = []
    realign = set(cfg.realign_iters)
    alis: dict[str, Alignment] = {}

    def realign_all(desc: str) -> tuple[dict[str, Alignment], dict[str, str], float]:
        todo = [u for u in utts if u in graphs and u not in failed]
        new, f = align_utterances(todo, graphs, gmm_score_fn(gmm, xx, acoustic_scale, True), desc=desc)
        changed = total = 0
        for u, a in new.items():
            if u not in paths:
                continue
            changed += int((a.classes != paths[u]).sum())
            total += a.classes.size
        return new, f, changed / max(total, 1)

    for it in range(1, cfg.iterations + 1):
        t0 = time.monotonic()
        changed, new_failed = 0.0, {}
        if it in realign:
            alis, new_failed, changed = realign_all(f"tri realign iter {it}")
            # A failure (no path) keeps the utterance out of the statistics from now on.
            paths = {u: a.classes for u, a in alis.items()}
        avg_ll = gmm.reestimate(feats, paths, floor, mixup_target(it, cfg.mixup_iterations, tree.num_pdfs, cfg.totgauss),
                                cfg.gauss_power, cfg.min_gauss_frames)
        row = {"iteration": it, "realigned": it in realign, "avg_loglik": avg_ll, "changed": changed,
               "failed": len(failed) + len(new_failed), "gauss": gmm.num_gauss, "seconds": time.monotonic() - t0}
        curve.append(row)
        log.info("tri iter %d%s: avg loglik/frame %.3f (alignment before the update), labels changed %.2f%%, "
                 "%d Gaussians, %.1f s", it, " (realigned)" if it in realign else "", avg_ll, 100 * changed,
                 gmm.num_gauss, row["seconds"])
    alis, new_failed, changed = realign_all("tri final alignment")
    failed.update(new_failed)
    log.info("triphone final alignment: labels changed %.2f%%, %d failed", 100 * changed, len(failed))
    return gmm, graphs, alis, failed, curve
