"""Building the tied-state decision tree from tree statistics (Kaldi's ``build-tree``).

1. *Roots* (:mod:`asrkd.align.questions`): one per (unit, state), one per unit (shared states),
   or as ``<lang>/roots.txt`` says; every root starts as one leaf.
2. *Splitting*: greedy and best-first over all roots: the leaf whose best question (on the left
   unit, the right unit, and for roots of several units / states the central unit / the state)
   gains most log-likelihood is split next, where a set of contexts scores the log-likelihood of
   its frames under its own maximum-likelihood diagonal Gaussian
   (:func:`asrkd.align.treestats.gauss_loglik`). Splitting stops when ``split_factor x
   num_leaves`` leaves exist, when the best gain is below ``min_gain``, or when no split leaves
   ``min_count`` frames on both sides.
3. *Merging* (Kaldi's clustering after the splits): the pair of leaves (within a root, or
   anywhere) whose merge costs the least log-likelihood is merged, while there are more than
   ``num_leaves`` or while the cheapest merge costs less than ``merge_threshold``; merged leaves
   share one pdf.
4. pdf ids are numbered in root order, then depth first (yes before no).

It only sees unit ids: phones, graphemes and pieces alike. Everything is deterministic (ties go
to the first key, question, leaf in order).
"""

from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numba
import numpy as np

from asrkd.align.gmm import DiagGmm
from asrkd.align.questions import (
    EXTRA_QUESTIONS_FILE,
    ROOTS_FILE,
    cluster_units,
    default_roots,
    read_roots,
    read_unit_sets,
    state_question_table,
    unit_question_table,
)
from asrkd.align.treestats import TreeStats, gauss_loglik
from asrkd.config import to_dict
from asrkd.errors import AsrkdError
from asrkd.lang.dtree import LEAF, LEFT, RIGHT, STATE, UNIT, DecisionTree, value_column
from asrkd.lang.inventory import Lang

log = logging.getLogger("asrkd.align.treebuild")


@dataclass(frozen=True)
class TreeConfig:
    num_leaves: int = 2000  # target number of pdfs (tied states) after the merge step
    min_gain: float = 300.0  # a split must raise the log-likelihood by at least this (Kaldi's --thresh)
    min_count: float = 50.0  # frames each side of a split must keep at least (fewer: no split)
    split_factor: float = 1.0  # split up to split_factor x num_leaves leaves, then merge down to num_leaves (>= 1)
    merge_threshold: float = -1.0  # also merge leaves whose merge costs less than this (-1: min_gain, Kaldi's cluster_thresh)
    merge_scope: Literal["root", "all"] = "root"  # merge only leaves of one root (Kaldi) or any two leaves
    shared_roots: bool = False  # one root per unit for all its HMM states (Kaldi's "shared"; the state is asked about) instead of one per state
    split_silence: bool = False  # let silence states depend on context (False: Kaldi's "not-split" silence root)
    roots_file: bool = True  # use <lang>/roots.txt (Kaldi format, unit names) when it exists, instead of the two options above
    data_questions: bool = True  # question sets from a top-down clustering of the units' statistics (Kaldi's cluster-phones)
    extra_questions: bool = True  # add the hand-written unit classes of <lang>/extra_questions.txt when it exists
    var_floor: float = 0.01  # variance floor of the Gaussians, as a fraction of the global variance

    def check(self) -> None:
        if self.num_leaves < 1 or self.split_factor < 1.0 or self.min_count < 0:
            raise AsrkdError("tree config: num_leaves >= 1, split_factor >= 1 and min_count >= 0 are required")
        if not self.data_questions and not self.extra_questions:
            raise AsrkdError("tree config: no question sets (data_questions and extra_questions both off)")


@dataclass
class TreeReport:
    """What the build did (log-likelihoods of the statistics' frames, one Gaussian per leaf/pdf)."""

    frames: float
    roots: int
    split_leaves: int  # leaves after splitting
    num_pdfs: int  # after merging
    questions: int
    loglik_roots: float  # one Gaussian per root
    loglik_split: float  # one Gaussian per leaf
    loglik_final: float  # one Gaussian per pdf
    stop: str  # why splitting ended
    curve: list[float] = field(default_factory=list)  # total log-likelihood after each split

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "curve"}
        d["gain_per_frame"] = (self.loglik_final - self.loglik_roots) / max(self.frames, 1.0)
        return d


@numba.njit(cache=True, nogil=True)
def _group_sums(vals: np.ndarray, rows: np.ndarray, count: np.ndarray, sx: np.ndarray, sxx: np.ndarray,
                width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of the statistics ``rows`` grouped by value column ``vals`` -> ``(W,), (W, D), (W, D)``."""
    D = sx.shape[1]
    c = np.zeros(width)
    x = np.zeros((width, D))
    xx = np.zeros((width, D))
    for i in range(rows.shape[0]):
        r = rows[i]
        v = vals[i]
        c[v] += count[r]
        for d in range(D):
            x[v, d] += sx[r, d]
            xx[v, d] += sxx[r, d]
    return c, x, xx


class _Splitter:
    """Best split of a set of statistics rows over the allowed keys and their questions."""

    def __init__(self, stats: TreeStats, cols: np.ndarray, questions: np.ndarray, key_questions: dict[int, np.ndarray],
                 floor: np.ndarray, min_count: float) -> None:
        self.stats, self.cols, self.questions = stats, cols, questions
        self.key_q = key_questions  # key -> question ids
        self.key_mat = {k: questions[q].astype(np.float64) for k, q in key_questions.items()}
        self.floor, self.min_count = floor, max(min_count, 1e-9)
        self.width = questions.shape[1]

    def best(self, rows: np.ndarray, keys: list[int], parent_ll: float) -> tuple[float, int, int]:
        """-> (gain, key, question id); gain -inf when no question splits ``rows``."""
        s = self.stats
        best = (-math.inf, -1, -1)
        for k in keys:
            if self.key_q[k].size == 0:
                continue
            c, x, xx = _group_sums(self.cols[rows, k], rows, s.count, s.sum, s.sumsq, self.width)
            present = c > 0
            if present.sum() < 2:
                continue
            M = self.key_mat[k][:, present]
            yc, yx, yxx = M @ c[present], M @ x[present], M @ xx[present]
            nc, nx, nxx = c.sum() - yc, x.sum(0) - yx, xx.sum(0) - yxx
            ok = (yc >= self.min_count) & (nc >= self.min_count)
            if not ok.any():
                continue
            gain = gauss_loglik(yc, yx, yxx, self.floor) + gauss_loglik(nc, nx, nxx, self.floor) - parent_ll
            gain = np.where(ok, gain, -np.inf)
            i = int(np.argmax(gain))
            if gain[i] > best[0]:
                best = (float(gain[i]), k, int(self.key_q[k][i]))
        return best


@numba.njit(cache=True, nogil=True)
def _merge_costs(rows: np.ndarray, cols: np.ndarray, c: np.ndarray, x: np.ndarray, xx: np.ndarray, ll: np.ndarray,
                 floor: np.ndarray, out: np.ndarray) -> None:
    """``out[a, b]`` = log-likelihood lost by merging clusters ``rows[a]`` and ``cols[b]``
    (:func:`asrkd.align.treestats.gauss_loglik` of each minus that of the union)."""
    D = x.shape[1]
    log2pi = math.log(2.0 * math.pi)
    for a in range(rows.shape[0]):
        i = rows[a]
        for b in range(cols.shape[0]):
            j = cols[b]
            n = c[i] + c[j]
            merged = 0.0
            if n > 0:
                s = 0.0
                for d in range(D):
                    mean = (x[i, d] + x[j, d]) / n
                    ml = (xx[i, d] + xx[j, d]) / n - mean * mean
                    if ml < 0.0:
                        ml = 0.0
                    v = ml if ml > floor[d] else floor[d]
                    s += math.log(v) + ml / v
                merged = -0.5 * n * (D * log2pi + s)
            out[a, b] = ll[i] + ll[j] - merged


class _Merger:
    """Dense pairwise merge costs of one group of clusters; clusters merge into the lower index."""

    def __init__(self, members: np.ndarray, c: np.ndarray, x: np.ndarray, xx: np.ndarray, ll: np.ndarray,
                 floor: np.ndarray) -> None:
        self.members = members  # (m,) cluster ids
        self.c, self.x, self.xx, self.ll, self.floor = c, x, xx, ll, floor  # shared arrays, by cluster id
        m = members.size
        self.alive = np.ones(m, dtype=bool)
        self.cost = np.empty((m, m))
        _merge_costs(members, members, c, x, xx, ll, floor, self.cost)
        np.fill_diagonal(self.cost, np.inf)
        self.rowmin = self.cost.min(1) if m else np.zeros(0)
        self.rowarg = self.cost.argmin(1) if m else np.zeros(0, dtype=np.int64)

    def best(self) -> tuple[float, int, int]:
        if self.members.size < 2:
            return math.inf, -1, -1
        i = int(np.argmin(self.rowmin))
        return float(self.rowmin[i]), i, int(self.rowarg[i])

    def merge(self, i: int, j: int) -> tuple[int, int]:
        """Merge local clusters ``i`` and ``j`` -> (kept cluster id, removed cluster id)."""
        a, b = min(i, j), max(i, j)
        ga, gb = int(self.members[a]), int(self.members[b])
        self.c[ga] += self.c[gb]
        self.x[ga] += self.x[gb]
        self.xx[ga] += self.xx[gb]
        self.ll[ga] = gauss_loglik(self.c[ga], self.x[ga], self.xx[ga], self.floor)
        self.alive[b] = False
        self.cost[b, :] = np.inf
        self.cost[:, b] = np.inf
        live = np.flatnonzero(self.alive)
        out = np.empty((1, live.size))
        _merge_costs(self.members[a : a + 1], self.members[live], self.c, self.x, self.xx, self.ll, self.floor, out)
        row = np.full(self.members.size, np.inf)
        row[live] = out[0]
        row[a] = np.inf
        self.cost[a, :] = row
        self.cost[:, a] = row
        stale = (self.rowarg == a) | (self.rowarg == b)
        stale[a] = stale[b] = True
        for r in np.flatnonzero(stale):
            self.rowarg[r] = int(np.argmin(self.cost[r]))
            self.rowmin[r] = self.cost[r, self.rowarg[r]]
        better = row < self.rowmin
        self.rowmin[better] = row[better]
        self.rowarg[better] = a
        return ga, gb


def load_questions(stats: TreeStats, lang: Lang, cfg: TreeConfig, floor: np.ndarray, width: int) -> np.ndarray:
    """Unit question table ``(Q, width)`` from the clustering and/or ``<lang>/extra_questions.txt``."""
    sets = cluster_units(stats, lang, floor) if cfg.data_questions else []
    extra = Path(lang.directory) / EXTRA_QUESTIONS_FILE
    if cfg.extra_questions and extra.is_file():
        hand = read_unit_sets(extra, lang)
        log.info("%s: %d hand-written question sets", extra, len(hand))
        sets += hand
    return unit_question_table(sets, lang, width)


def load_roots(lang: Lang, cfg: TreeConfig) -> list[dict]:
    path = Path(lang.directory) / ROOTS_FILE
    if cfg.roots_file and path.is_file():
        return read_roots(path, lang)
    return default_roots(lang, cfg.shared_roots, cfg.split_silence)


def build_tree(stats: TreeStats, lang: Lang, cfg: TreeConfig, roots: list[dict] | None = None,
               unit_questions: np.ndarray | None = None) -> tuple[DecisionTree, TreeReport]:
    """Grow, merge and number the tree for ``stats`` -> (tree, report). ``roots`` / ``unit_questions``
    override :func:`load_roots` / :func:`load_questions`."""
    cfg.check()
    U, Smax = len(lang.units), int(lang.unit_num_states.max())
    width = max(U, Smax) + 1
    floor = cfg.var_floor * np.maximum(stats.global_var(), 1e-10)
    if stats.count.size and (stats.unit.max() >= U or stats.state.max() >= Smax):
        raise AsrkdError("tree statistics do not match the lang's units")
    roots = load_roots(lang, cfg) if roots is None else roots
    uq = load_questions(stats, lang, cfg, floor, width) if unit_questions is None else unit_questions
    sq = state_question_table(Smax, width)
    questions = np.concatenate([uq, sq]).astype(bool)
    key_q = {LEFT: np.arange(uq.shape[0]), RIGHT: np.arange(uq.shape[0]), UNIT: np.arange(uq.shape[0]),
             STATE: uq.shape[0] + np.arange(sq.shape[0])}
    cols = np.ascontiguousarray(value_column(np.stack([stats.left, stats.right, stats.unit, stats.state], 1)).astype(np.int64))
    splitter = _Splitter(stats, cols, questions, key_q, floor, cfg.min_count)

    # Roots: the statistics rows of each.
    root_id = np.full((U, Smax), -1, dtype=np.int64)
    for r, root in enumerate(roots):
        for u in root["units"]:
            for s in root["states"]:
                if s < lang.unit_num_states[u]:
                    root_id[u, s] = r
    row_root = root_id[stats.unit, stats.state]
    if (row_root < 0).any():
        raise AsrkdError("tree roots do not cover every unit state of the statistics")

    # Nodes as growing lists; leaves carry their rows and pooled log-likelihood.
    key: list[int] = []
    qid: list[int] = []
    yes: list[int] = []
    no: list[int] = []
    node_root: list[int] = []
    leaf_rows: dict[int, np.ndarray] = {}
    leaf_ll: dict[int, float] = {}
    heap: list[tuple[float, int, int, int]] = []  # (-gain, node, key, question): node breaks ties
    root_keys = [([LEFT, RIGHT] + ([UNIT] if len(r["units"]) > 1 else []) + ([STATE] if len(r["states"]) > 1 else []))
                 if r["split"] else [] for r in roots]

    def new_leaf(rows: np.ndarray, r: int) -> int:
        n = len(key)
        key.append(LEAF), qid.append(-1), yes.append(-1), no.append(-1), node_root.append(r)
        leaf_rows[n] = rows
        leaf_ll[n] = float(gauss_loglik(stats.count[rows].sum(), stats.sum[rows].sum(0), stats.sumsq[rows].sum(0), floor))
        if root_keys[r] and rows.size > 1:
            g, k, q = splitter.best(rows, root_keys[r], leaf_ll[n])
            if g > 0:
                heapq.heappush(heap, (-g, n, k, q))
        return n

    order = np.argsort(row_root, kind="stable")
    bounds = np.searchsorted(row_root[order], np.arange(len(roots) + 1))
    root_node = [new_leaf(order[bounds[r] : bounds[r + 1]], r) for r in range(len(roots))]
    total = ll_roots = sum(leaf_ll.values())
    max_leaves = max(cfg.num_leaves, math.ceil(cfg.num_leaves * cfg.split_factor))
    curve = [total]
    stop = "no split left"
    while heap:
        if len(leaf_rows) >= max_leaves:
            stop = f"{max_leaves} leaves"
            break
        neg, n, k, q = heapq.heappop(heap)
        if -neg < cfg.min_gain:
            stop = f"best gain {-neg:.1f} < min_gain"
            break
        rows = leaf_rows.pop(n)
        parent_ll = leaf_ll.pop(n)
        ans = questions[q, cols[rows, k]]
        y = new_leaf(rows[ans], node_root[n])
        m = new_leaf(rows[~ans], node_root[n])
        key[n], qid[n], yes[n], no[n] = k, q, y, m
        total += leaf_ll[y] + leaf_ll[m] - parent_ll
        curve.append(total)
    leaves = sorted(leaf_rows)
    log.info("tree: %d roots -> %d leaves by splitting (stop: %s), log-likelihood %.6g -> %.6g", len(roots),
             len(leaves), stop, ll_roots, total)

    # Merging: clusters start as the leaves (cluster i = leaves[i]).
    c = np.array([stats.count[leaf_rows[n]].sum() for n in leaves])
    x = np.array([stats.sum[leaf_rows[n]].sum(0) for n in leaves]).reshape(len(leaves), stats.dim)
    xx = np.array([stats.sumsq[leaf_rows[n]].sum(0) for n in leaves]).reshape(len(leaves), stats.dim)
    ll = np.array([leaf_ll[n] for n in leaves])
    cluster = np.arange(len(leaves))  # leaf index -> cluster id (union-find root)
    groups = np.array([node_root[n] for n in leaves]) if cfg.merge_scope == "root" else np.zeros(len(leaves), int)
    seen = c > 0  # leaves of roots never seen (no frames) keep their own pdf
    mergers = [_Merger(np.flatnonzero((groups == g) & seen), c, x, xx, ll, floor) for g in np.unique(groups)]
    best = [mg.best() for mg in mergers]
    threshold = cfg.min_gain if cfg.merge_threshold < 0 else cfg.merge_threshold
    num = len(leaves)
    while best:
        gi = min(range(len(best)), key=lambda i: (best[i][0], i))
        cost, i, j = best[gi]
        if not math.isfinite(cost) or (num <= cfg.num_leaves and cost >= threshold):
            break
        kept, gone = mergers[gi].merge(i, j)
        cluster[cluster == gone] = kept
        best[gi] = mergers[gi].best()
        num -= 1
    if num > cfg.num_leaves:
        log.warning("tree: %d pdfs, more than num_leaves=%d (no more leaves can merge within their roots)",
                    num, cfg.num_leaves)

    # pdf ids: first appearance in root order, depth first, yes before no.
    pdf_of_cluster: dict[int, int] = {}
    leaf_index = {n: i for i, n in enumerate(leaves)}
    pdf = np.full(len(key), -1, dtype=np.int64)
    for rn in root_node:
        stack = [rn]
        while stack:
            n = stack.pop()
            if key[n] != LEAF:
                stack += [no[n], yes[n]]
                continue
            cl = int(cluster[leaf_index[n]])
            pdf[n] = pdf_of_cluster.setdefault(cl, len(pdf_of_cluster))
    clusters = np.array(sorted(pdf_of_cluster, key=pdf_of_cluster.get), dtype=np.int64)
    pdf_frames = c[clusters]
    ll_final = float(ll[clusters].sum())
    tree = DecisionTree(lang, roots, np.array(root_node), questions, np.array(key), np.array(qid), np.array(yes),
                        np.array(no), pdf, pdf_frames, to_dict(cfg))
    report = TreeReport(frames=float(stats.count.sum()), roots=len(roots), split_leaves=len(leaves),
                        num_pdfs=tree.num_pdfs, questions=int(uq.shape[0]), loglik_roots=ll_roots,
                        loglik_split=total, loglik_final=ll_final, stop=stop, curve=curve)
    log.info("tree: %d pdfs after merging, log-likelihood per frame %.4f -> %.4f (%d frames)", tree.num_pdfs,
             ll_roots / max(report.frames, 1), ll_final / max(report.frames, 1), report.frames)
    return tree, report


def leaf_gmm(tree: DecisionTree, stats: TreeStats, var_floor: float = 0.01) -> DiagGmm:
    """The initial triphone model: one diagonal Gaussian per pdf from the statistics of the
    contexts that reach it (Kaldi's ``gmm-init-model``); variances floored at ``var_floor`` x the
    global variance; a pdf without frames (a unit never seen) gets the global Gaussian."""
    P = tree.num_pdfs
    pdf = tree.pdfs(stats.left, stats.unit, stats.right, stats.state)
    c = np.bincount(pdf, weights=stats.count, minlength=P)
    x = np.zeros((P, stats.dim))
    xx = np.zeros((P, stats.dim))
    np.add.at(x, pdf, stats.sum)
    np.add.at(xx, pdf, stats.sumsq)
    n = float(stats.count.sum())
    gmean = stats.sum.sum(0) / max(n, 1.0)
    gvar = np.maximum(stats.global_var(), 1e-10)
    seen = c > 0
    mean = np.where(seen[:, None], x / np.maximum(c, 1e-300)[:, None], gmean)
    var = np.where(seen[:, None], xx / np.maximum(c, 1e-300)[:, None] - mean * mean, gvar)
    var = np.maximum(var, var_floor * gvar)
    if not seen.all():
        log.warning("%d of %d pdfs have no frames: initialised with the global Gaussian", int((~seen).sum()), P)
    return DiagGmm(np.arange(P + 1), np.ones(P), mean, var)
