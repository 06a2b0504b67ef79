"""Align one utterance given its frame scores: the one entry point for every model.

Any model that gives per-frame class scores aligns through :func:`align_loglik`: the Gaussian
estimator of the flat start passes log-likelihoods, a neural network passes scaled likelihoods
(:func:`scaled_loglik`: log posterior minus log prior, times an acoustic scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asrkd.align import viterbi as vit
from asrkd.align.graph import Graph
from asrkd.errors import AsrkdError


class AlignFailure(AsrkdError):
    """An utterance that cannot be aligned (listed in the label store's ``failed`` table)."""


@dataclass
class Alignment:
    nodes: np.ndarray  # (frames,) int32 graph node of every frame
    classes: np.ndarray  # (frames,) int32 class id of every frame
    score: float  # total log score of the path (scaled emissions + transitions)


def scaled_loglik(log_post: np.ndarray, log_prior: np.ndarray, acoustic_scale: float = 1.0) -> np.ndarray:
    """Hybrid-model emission scores: ``(log_post (frames, C) - log_prior (C,)) * acoustic_scale``."""
    assert log_post.ndim == 2 and log_prior.shape == (log_post.shape[1],)
    return ((log_post - log_prior[None, :]) * acoustic_scale).astype(np.float32)


def align_loglik(loglik: np.ndarray, graph: Graph, node_col: np.ndarray | None = None) -> Alignment:
    """Best path through ``graph`` for emission scores ``loglik: (frames, K)`` float32.

    ``node_col: (N,)`` maps each node to its column of ``loglik``; by default the column is the
    node's class id (``loglik`` is ``(frames, num_classes)``). Raises :class:`AlignFailure` if the
    utterance is too short for the graph or no path exists.
    """
    n_frames = loglik.shape[0]
    need = graph.min_frames()
    if n_frames < need:
        raise AlignFailure(f"too-short: {n_frames} frames < {need} needed by {len(graph.unit_ids)} units")
    cols = graph.node_class if node_col is None else np.asarray(node_col, dtype=np.int32)
    if cols.size and int(cols.max()) >= loglik.shape[1]:
        raise AsrkdError(f"graph uses column {int(cols.max())} but scores have {loglik.shape[1]} columns")
    ll = np.ascontiguousarray(loglik, dtype=np.float32)
    path = np.empty(n_frames, dtype=np.int32)
    score = vit.viterbi(
        ll, cols, graph.self_lp, graph.enter_lp, graph.extra_start, graph.extra_src, graph.extra_lp,
        graph.start_lp, graph.final_lp, path,
    )
    if not np.isfinite(score):
        raise AlignFailure("no-path: no path of this length through the graph (non-finite scores?)")
    return Alignment(nodes=path, classes=graph.node_class[path], score=float(score))
