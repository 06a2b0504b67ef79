"""Questions and roots for the decision tree (Kaldi's ``cluster-phones``, ``extra_questions.txt``,
``compile-questions`` and ``roots.txt``).

A question is a set of values of one key (:mod:`asrkd.lang.dtree`), stored as a boolean row over
value columns (``value + 1``; column 0 is :data:`asrkd.lang.tree.BOUNDARY`).

*Data-driven questions* (:func:`cluster_units`): the units' pooled single-Gaussian statistics
(the middle HMM state of each unit, over all its contexts, as ``cluster-phones`` does) are split
top-down into two clusters at a time (2-means on the Gaussian log-likelihood, deterministic
seeds, moves until no unit gains) down to single units; every node of that binary tree is a
question. The utterance boundary joins every set that holds silence (an utterance edge sounds like
silence), and is also a question alone.

*Hand-written questions*: ``<lang>/extra_questions.txt``, one set of unit names per line
(``<bnd>`` = the boundary).

*Roots* (:func:`default_roots`, :func:`read_roots`): ``<lang>/roots.txt`` lines
``shared|not-shared split|not-split UNIT ...`` as Kaldi's: ``shared`` = one root for all HMM
states of the line's units (the state becomes a question), ``not-shared`` = one root per state;
``not-split`` = the root stays one leaf. Units missing from the file get their own
``not-shared split`` root.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np

from asrkd.align.treestats import TreeStats, gauss_loglik
from asrkd.errors import AsrkdError
from asrkd.lang.dtree import BOUNDARY_NAME, value_column
from asrkd.lang.inventory import Lang
from asrkd.lang.tree import BOUNDARY

log = logging.getLogger("asrkd.align.questions")

EXTRA_QUESTIONS_FILE = "extra_questions.txt"
ROOTS_FILE = "roots.txt"

UnitSet = frozenset  # of unit ids (BOUNDARY included where it belongs)


def _unit_gaussians(stats: TreeStats, lang: Lang) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled statistics of each unit's middle state -> ``count (U,)``, ``sum, sumsq (U, D)``."""
    U = len(lang.units)
    mid = lang.unit_num_states[stats.unit] // 2
    sel = stats.state == mid
    u = stats.unit[sel]
    count = np.bincount(u, weights=stats.count[sel], minlength=U)
    sx = np.zeros((U, stats.dim))
    sxx = np.zeros((U, stats.dim))
    np.add.at(sx, u, stats.sum[sel])
    np.add.at(sxx, u, stats.sumsq[sel])
    return count, sx, sxx


def _two_means(members: list[int], c: np.ndarray, x: np.ndarray, xx: np.ndarray, floor: np.ndarray,
               max_passes: int = 20) -> tuple[list[int], list[int]]:
    """Split ``members`` (unit ids) into two clusters maximising the summed log-likelihood of the
    clusters' Gaussians. Seeds: the unit with most frames, and the unit that is costliest to merge
    with it; the others go to the cheaper seed; then single units move while the total improves."""
    m = np.asarray(members)
    ll_single = gauss_loglik(c[m], x[m], xx[m], floor)
    a = int(np.argmax(c[m]))
    pair = gauss_loglik(c[m] + c[m[a]], x[m] + x[m[a]], xx[m] + xx[m[a]], floor)
    cost = ll_single + ll_single[a] - pair
    cost[a] = -np.inf
    b = int(np.argmax(cost))
    side = np.zeros(m.size, dtype=bool)  # True: cluster B
    side[b] = True
    # Everyone else: to the seed whose merge costs less.
    pb = gauss_loglik(c[m] + c[m[b]], x[m] + x[m[b]], xx[m] + xx[m[b]], floor)
    cost_b = ll_single + ll_single[b] - pb
    side |= cost_b < cost
    side[a] = False

    def sums(mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return c[m[mask]].sum(), x[m[mask]].sum(0), xx[m[mask]].sum(0)

    for _ in range(max_passes):
        moved = False
        for i in range(m.size):
            src = side.copy()
            if (src == src[i]).sum() == 1:
                continue  # never empty a cluster
            dst = src.copy()
            dst[i] = ~dst[i]
            before = sum(float(gauss_loglik(*(np.asarray(v) for v in sums(s)), floor)) for s in (src, ~src))
            after = sum(float(gauss_loglik(*(np.asarray(v) for v in sums(s)), floor)) for s in (dst, ~dst))
            if after > before + 1e-9 * max(1.0, abs(before)):
                side = dst
                moved = True
        if not moved:
            break
    return [int(u) for u in m[~side]], [int(u) for u in m[side]]


def cluster_units(stats: TreeStats, lang: Lang, var_floor: np.ndarray) -> list[UnitSet]:
    """Data-driven question sets: every node of a top-down binary clustering of the seen units
    (the root, the set of all of them, excluded). ``var_floor (D,)``."""
    c, x, xx = _unit_gaussians(stats, lang)
    seen = [u for u in range(len(lang.units)) if c[u] > 0]
    out: list[UnitSet] = []
    todo = [seen]
    while todo:
        members = todo.pop(0)
        if len(members) < 2:
            continue
        for part in _two_means(members, c, x, xx, var_floor):
            out.append(frozenset(part))
            todo.append(part)
    log.info("unit clustering: %d seen units -> %d question sets", len(seen), len(out))
    return out


def read_unit_sets(path: Path, lang: Lang) -> list[UnitSet]:
    """``extra_questions.txt``: one set of unit names per line (``<bnd>`` = utterance boundary)."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        names = line.split()
        if not names:
            continue
        try:
            out.append(frozenset(BOUNDARY if n == BOUNDARY_NAME else lang.unit_id(n) for n in names))
        except AsrkdError as e:
            raise AsrkdError(f"{path}:{lineno}: {e}") from None
    return out


def unit_question_table(sets: list[UnitSet], lang: Lang, width: int) -> np.ndarray:
    """Question rows ``(Q, width)`` bool of unit sets: silence sets gain the boundary, plus the
    boundary alone; empty, total and repeated (or complementary) sets dropped, order kept."""
    U = len(lang.units)
    full = np.zeros(width, dtype=bool)
    full[: U + 1] = True
    rows, seen = [], set()
    sets = list(sets) + [frozenset([BOUNDARY])]
    for s in sets:
        row = np.zeros(width, dtype=bool)
        members = set(s)
        if lang.silence_unit in members:
            members.add(BOUNDARY)
        row[[value_column(u) for u in members]] = True
        key, comp = row.tobytes(), (full & ~row).tobytes()
        if not row.any() or not (full & ~row).any() or key in seen or comp in seen:
            continue
        seen.add(key)
        rows.append(row)
    return np.array(rows, dtype=bool).reshape(len(rows), width)


def state_question_table(max_states: int, width: int) -> np.ndarray:
    """Questions on the HMM state for shared roots: every subset of ``0..S-1`` up to complement."""
    rows, seen = [], set()
    for k in range(1, max_states):
        for subset in itertools.combinations(range(max_states), k):
            row = np.zeros(width, dtype=bool)
            row[[value_column(s) for s in subset]] = True
            comp = np.zeros(width, dtype=bool)
            comp[[value_column(s) for s in range(max_states) if s not in subset]] = True
            if comp.tobytes() in seen:
                continue
            seen.add(row.tobytes())
            rows.append(row)
    return np.array(rows, dtype=bool).reshape(len(rows), width)


def default_roots(lang: Lang, shared: bool, split_silence: bool) -> list[dict]:
    """One root per unit (``shared``) or per (unit, state); silence split only if ``split_silence``."""
    roots = []
    for u in range(len(lang.units)):
        split = split_silence or u != lang.silence_unit
        states = list(range(int(lang.unit_num_states[u])))
        if shared:
            roots.append({"units": [u], "states": states, "split": split})
        else:
            roots += [{"units": [u], "states": [s], "split": split} for s in states]
    return roots


def read_roots(path: Path, lang: Lang) -> list[dict]:
    """Kaldi-format ``roots.txt`` with unit names; units it does not name get their own
    ``not-shared split`` roots."""
    roots, named = [], set()
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 3 or f[0] not in ("shared", "not-shared") or f[1] not in ("split", "not-split"):
            raise AsrkdError(f"{path}:{lineno}: expected 'shared|not-shared split|not-split UNIT ...'")
        try:
            units = [lang.unit_id(n) for n in f[2:]]
        except AsrkdError as e:
            raise AsrkdError(f"{path}:{lineno}: {e}") from None
        if named & set(units) or len(set(units)) < len(units):
            raise AsrkdError(f"{path}:{lineno}: a unit is in two roots")
        named |= set(units)
        states = list(range(int(max(lang.unit_num_states[u] for u in units))))
        if f[0] == "shared":
            roots.append({"units": units, "states": states, "split": f[1] == "split"})
        else:
            roots += [{"units": units, "states": [s], "split": f[1] == "split"} for s in states]
    for u in range(len(lang.units)):
        if u not in named:
            roots += [{"units": [u], "states": [s], "split": True} for s in range(int(lang.unit_num_states[u]))]
    return roots
