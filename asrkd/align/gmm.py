"""Diagonal-covariance Gaussian mixtures, one per class: the flat-start aligner's estimator.

Kaldi-mono style: every class starts with one Gaussian; after each re-estimation the total
number of Gaussians grows towards a target, allocated to classes in proportion to
``count ** power`` and split from the heaviest component (means moved by +-``perturb`` standard
deviations). Training is Viterbi training: each frame belongs to the class its alignment gives,
and inside a class the components share it by their posterior (one EM step per iteration).

Components are stored sorted by class (``class_start[c] .. class_start[c+1]``), so the
log-likelihoods of an utterance are one matrix product over the components of the classes its
graph uses, followed by a per-class log-sum-exp.
"""

from __future__ import annotations

import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkd.errors import AsrkdError

log = logging.getLogger("asrkd.align.gmm")

LOG_2PI = math.log(2.0 * math.pi)


def mixup_target(it: int, mixup_iterations: int, start: int, total: int) -> int:
    """Target total Gaussians after training iteration ``it`` (1-based): linear growth from
    ``start`` to ``total``, reached at ``mixup_iterations``."""
    if it >= mixup_iterations:
        return total
    return int(start + (total - start) * it / mixup_iterations)


@dataclass
class Stats:
    """Sufficient statistics per component: ``occ (G,)``, ``x (G, D)``, ``x2 (G, D)``."""

    occ: np.ndarray
    x: np.ndarray
    x2: np.ndarray
    loglik: float = 0.0  # total log-likelihood of the accumulated frames
    frames: int = 0


class DiagGmm:
    def __init__(self, class_start: np.ndarray, weight: np.ndarray, mean: np.ndarray, var: np.ndarray):
        self.class_start = np.asarray(class_start, dtype=np.int64)  # (C + 1,)
        self.weight = np.asarray(weight, dtype=np.float64)  # (G,)
        self.mean = np.asarray(mean, dtype=np.float64)  # (G, D)
        self.var = np.asarray(var, dtype=np.float64)  # (G, D)
        self._prepare()

    @property
    def num_classes(self) -> int:
        return self.class_start.shape[0] - 1

    @property
    def num_gauss(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.mean.shape[1]

    @classmethod
    def init_global(cls, num_classes: int, mean: np.ndarray, var: np.ndarray) -> "DiagGmm":
        """Every class one Gaussian equal to the global distribution (flat start)."""
        return cls(np.arange(num_classes + 1), np.ones(num_classes),
                   np.tile(mean, (num_classes, 1)), np.tile(var, (num_classes, 1)))

    def _prepare(self) -> None:
        iv = 1.0 / self.var
        # log N(x) + log w = gconst + x . (mu/var) - 0.5 x^2 . (1/var)
        self._gconst = (np.log(np.maximum(self.weight, 1e-300)) - 0.5 * (
            self.dim * LOG_2PI + np.log(self.var).sum(1) + (self.mean**2 * iv).sum(1)
        )).astype(np.float32)
        self._proj = np.concatenate([self.mean * iv, -0.5 * iv], axis=1).T.astype(np.float32)  # (2D, G)
        self._comp_class = np.repeat(np.arange(self.num_classes), np.diff(self.class_start))

    @staticmethod
    def expand(feats: np.ndarray) -> np.ndarray:
        """``feats: (frames, D)`` -> ``(frames, 2D)`` float32 ``[x, x^2]`` (precompute once per utterance)."""
        return np.concatenate([feats, feats * feats], axis=1).astype(np.float32)

    def component_loglik(self, xx: np.ndarray, comps: np.ndarray) -> np.ndarray:
        """``xx: (frames, 2D)`` (:meth:`expand`), component ids ``(K,)`` -> ``(frames, K)`` weighted
        log-densities."""
        return xx @ self._proj[:, comps] + self._gconst[comps]

    def loglik(self, feats: np.ndarray, classes: np.ndarray, expanded: bool = False) -> np.ndarray:
        """``feats: (frames, D)`` (or ``(frames, 2D)`` if ``expanded``), class ids ``(K,)`` -> ``(frames, K)``
        float32 class log-likelihoods."""
        xx = feats if expanded else self.expand(feats)
        classes = np.asarray(classes, dtype=np.int64)
        starts, ends = self.class_start[classes], self.class_start[classes + 1]
        counts = ends - starts
        comps = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        ll = self.component_loglik(xx, comps)
        if ll.shape[1] == classes.shape[0]:  # one Gaussian per class: nothing to sum
            return ll.astype(np.float32)
        seg = np.concatenate([[0], np.cumsum(counts)[:-1]])
        m = np.maximum.reduceat(ll, seg, axis=1)
        rep = np.repeat(m, counts, axis=1)
        s = np.add.reduceat(np.exp(ll - rep), seg, axis=1)
        return (m + np.log(s)).astype(np.float32)

    # --- training ---------------------------------------------------------------------------

    def zero_stats(self) -> Stats:
        G, D = self.num_gauss, self.dim
        return Stats(np.zeros(G), np.zeros((G, D)), np.zeros((G, D)))

    def accumulate(self, stats: Stats, feats: np.ndarray, classes: np.ndarray) -> None:
        """Add frames ``feats: (N, D)`` labelled ``classes: (N,)`` to ``stats`` (pass many
        utterances at once: the work is one pass per class)."""
        order = np.argsort(classes, kind="stable")
        cls_sorted = classes[order]
        bounds = np.flatnonzero(np.diff(cls_sorted)) + 1
        for idx in np.split(order, bounds):
            if idx.size == 0:
                continue
            c = int(classes[idx[0]])
            x = feats[idx].astype(np.float64)
            s, e = int(self.class_start[c]), int(self.class_start[c + 1])
            comps = np.arange(s, e)
            ll = self.component_loglik(self.expand(x), comps).astype(np.float64)
            m = ll.max(1, keepdims=True)
            p = np.exp(ll - m)
            tot = p.sum(1, keepdims=True)
            post = p / tot
            stats.loglik += float((m[:, 0] + np.log(tot[:, 0])).sum())
            stats.frames += x.shape[0]
            stats.occ[s:e] += post.sum(0)
            stats.x[s:e] += post.T @ x
            stats.x2[s:e] += post.T @ (x * x)

    def update(self, stats: Stats, var_floor: np.ndarray, min_count: float = 3.0) -> None:
        """Maximum-likelihood update; components with fewer than ``min_count`` frames keep
        their old parameters (weight renormalised)."""
        occ = stats.occ
        ok = occ >= min_count
        mean = np.where(ok[:, None], stats.x / np.maximum(occ, 1e-10)[:, None], self.mean)
        var = np.where(ok[:, None], stats.x2 / np.maximum(occ, 1e-10)[:, None] - mean**2, self.var)
        var = np.maximum(var, var_floor[None, :])
        class_occ = np.add.reduceat(occ, self.class_start[:-1]) if self.num_gauss else occ
        weight = self.weight.copy()
        for c in range(self.num_classes):
            s, e = self.class_start[c], self.class_start[c + 1]
            if class_occ[c] > 0:
                w = np.maximum(occ[s:e], 1e-3) / max(class_occ[c], 1e-10)
                weight[s:e] = w / w.sum()
        self.weight, self.mean, self.var = weight, mean, var
        self._prepare()

    def mixup(self, class_occ: np.ndarray, target: int, power: float = 0.2, min_count: float = 20.0,
              perturb: float = 0.2) -> None:
        """Split components so that the total approaches ``target`` Gaussians, allocated as
        ``class_occ ** power``, at most ``class_occ / min_count`` per class."""
        cur = np.diff(self.class_start)
        share = np.power(np.maximum(class_occ, 0.0), power)
        if share.sum() <= 0:
            return
        want = np.floor(share / share.sum() * target + 0.5).astype(np.int64)
        want = np.minimum(want, np.floor(class_occ / min_count).astype(np.int64))
        want = np.maximum(want, cur)  # never merge
        if (want == cur).all():
            return
        W, M, V, starts = [], [], [], [0]
        for c in range(self.num_classes):
            s, e = self.class_start[c], self.class_start[c + 1]
            w, m, v = list(self.weight[s:e]), list(self.mean[s:e]), list(self.var[s:e])
            while len(w) < want[c]:
                k = int(np.argmax(w))
                d = perturb * np.sqrt(v[k])
                w[k] /= 2.0
                w.append(w[k])
                m.append(m[k] + d)
                m[k] = m[k] - d
                v.append(v[k].copy())
            W += w
            M += m
            V += v
            starts.append(len(W))
        self.class_start = np.asarray(starts, dtype=np.int64)
        self.weight, self.mean, self.var = np.asarray(W), np.asarray(M), np.asarray(V)
        self._prepare()

    def class_occupancy(self, stats: Stats) -> np.ndarray:
        return np.add.reduceat(stats.occ, self.class_start[:-1])

    def accumulate_utts(self, feats: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> Stats:
        """Statistics of the utterances of ``labels`` {utt: (T,) classes} (``feats``: {utt: (T, D)})."""
        stats = self.zero_stats()
        utts = sorted(labels)
        if utts:
            self.accumulate(stats, np.concatenate([feats[u] for u in utts]), np.concatenate([labels[u] for u in utts]))
        return stats

    def reestimate(self, feats: dict[str, np.ndarray], labels: dict[str, np.ndarray], var_floor: np.ndarray,
                   target_gauss: int, power: float, min_gauss_frames: float) -> float:
        """One Viterbi-training step on an alignment: accumulate, update, grow the mixtures
        towards ``target_gauss`` (:meth:`mixup`). Returns the alignment's average log-likelihood
        per frame under the model *before* the update."""
        stats = self.accumulate_utts(feats, labels)
        class_occ = self.class_occupancy(stats)
        self.update(stats, var_floor)
        self.mixup(class_occ, target_gauss, power, min_gauss_frames)
        return stats.loglik / max(stats.frames, 1)

    # --- files --------------------------------------------------------------------------------

    def save(self, path: Path, **meta: str) -> None:
        """``.npz`` with the parameters plus string metadata (no pickles)."""
        import io

        from asrkd.fileio import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, class_start=self.class_start, weight=self.weight, mean=self.mean, var=self.var,
                 **{f"meta_{k}": np.asarray(v) for k, v in meta.items()})
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> tuple["DiagGmm", dict[str, str]]:
        path = Path(path)
        if not path.is_file():
            raise AsrkdError(f"alignment model not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                gmm = cls(z["class_start"], z["weight"], z["mean"], z["var"])
                meta = {k[5:]: str(z[k]) for k in z.files if k.startswith("meta_")}
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as e:
            # A pickle (refused: no code runs), another program's .npz or a damaged file.
            raise AsrkdError(f"{path} is not an asrkd alignment model (.gmm.npz written by `asrkd align`): "
                             f"{type(e).__name__}: {e}") from None
        return gmm, meta
