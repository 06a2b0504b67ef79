"""An interpolated modified Kneser-Ney n-gram model over integer tokens, stored as a trie of
sorted arrays (the joint-sequence G2P's graphone model; Chen & Goodman 1998).

Nodes: 0 is the root (empty history); node ``1 + t`` is the unigram of token ``t``; higher-order
nodes follow, order by order, each order sorted by its key ``parent * V + token`` (``parent`` the
node of the n-gram's first n-1 tokens, ``V`` the number of tokens). So the unigram keys are the
tokens themselves and one binary search in an order's segment finds a child.

Per node: ``logp`` = ln p(token | history) (interpolated, so already including the lower
orders), ``bow`` = ln gamma(history = this node) (the mass left to the lower order; 0 for a node
that is never a history) and ``suffix`` = the node of the n-gram without its first token. Then
``p(w | h) = p_node(h, w)`` when ``(h, w)`` is a node and ``gamma(h) p(w | h')`` otherwise: the
backoff form of the interpolated model, exact (as SRILM and KenLM write interpolated models).

Sentences are ``BOS t1 ... tn EOS`` with ``BOS = V - 2`` and ``EOS = V - 1``; BOS is never
predicted. Histories never cross sentences.
"""

from __future__ import annotations

import numba
import numpy as np


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Modified Kneser-Ney discounts ``[0, D1, D2, D3+]`` from count-of-counts (Chen & Goodman's
    estimate); a small model without enough singletons/doubletons gets 0.5 / 1.0 / 1.5."""
    n = [int(np.sum(counts == k)) for k in (1, 2, 3, 4)]
    if min(n) == 0:
        return np.array([0.0, 0.5, 1.0, 1.5])
    y = n[0] / (n[0] + 2 * n[1])
    d = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
    # Each discount must stay in (0, its count): guards against odd count-of-counts.
    d = [min(max(v, 0.05), k - 0.05) for v, k in zip(d, (1, 2, 3))]
    return np.array([0.0] + d)


def train_kn(tokens: np.ndarray, starts: np.ndarray, V: int, order: int) -> dict[str, np.ndarray]:
    """Estimate the model from sentences.

    tokens: (T,) int64 token ids in ``[0, V - 2)`` of all sentences, concatenated (without BOS /
    EOS, which are added here); starts: (S + 1,) offsets of the sentences. Returns the trie
    arrays: ``keys`` (N,) int64, ``logp`` (N,) float64, ``bow`` (N,) float64, ``suffix`` (N,)
    int64, ``order_start`` (order + 2,) int64 (order k's nodes are
    ``order_start[k]:order_start[k + 1]``, k = 0 the root), ``V`` and ``order`` (0-d arrays).
    """
    bos, eos = V - 2, V - 1
    lens = np.diff(starts)
    S = len(lens)
    # Sentence s occupies positions [sent_start[s], sent_start[s] + lens[s] + 2): BOS, tokens, EOS.
    sent_start = np.concatenate([[0], np.cumsum(lens + 2)[:-1]]).astype(np.int64)
    seq = np.empty(int(lens.sum()) + 2 * S, np.int64)
    seq[sent_start] = bos
    seq[sent_start + lens + 1] = eos
    inner = np.ones(len(seq), bool)
    inner[sent_start] = False
    inner[sent_start + lens + 1] = False
    seq[inner] = tokens
    pos_in_sent = np.arange(len(seq)) - np.repeat(sent_start, lens + 2)
    predicted = pos_in_sent > 0  # every position but BOS is a predicted token

    # node_at[k][t]: node of the k-gram ending at position t (-1 where it would cross BOS).
    node_at = [np.zeros(len(seq), np.int64), 1 + seq]
    keys = [np.zeros(1, np.int64), np.arange(V, dtype=np.int64)]
    parents = [np.full(1, -1, np.int64), np.zeros(V, np.int64)]
    raw = [np.zeros(1), np.bincount(seq[predicted], minlength=V).astype(np.float64)]
    suffix = [np.full(1, -1, np.int64), np.zeros(V, np.int64)]
    n_nodes = 1 + V
    for k in range(2, order + 1):
        ok = (pos_in_sent >= k - 1) & predicted
        t = np.nonzero(ok)[0]
        key = node_at[k - 1][t - 1] * V + seq[t]
        uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        ids = n_nodes + np.arange(len(uk))
        at = np.full(len(seq), -1, np.int64)
        at[t] = ids[inv]
        suf = np.zeros(len(uk), np.int64)
        suf[inv] = node_at[k - 1][t]  # the k-gram ending at t without its first token
        node_at.append(at)
        keys.append(uk)
        parents.append(uk // V)
        raw.append(cnt.astype(np.float64))
        suffix.append(suf)
        n_nodes += len(uk)
    order_start = np.cumsum([0] + [len(x) for x in keys]).astype(np.int64)

    # Kneser-Ney counts: raw at the highest order and for n-grams starting with BOS (nothing can
    # precede them); elsewhere the number of distinct one-token-longer left extensions.
    adj = [c.copy() for c in raw]
    for k in range(1, order):
        cont = np.bincount(suffix[k + 1] - order_start[k], minlength=len(keys[k])).astype(np.float64)
        first = _first_token(k, keys, parents, order_start, V)
        adj[k] = np.where(first == bos, raw[k], cont)
    adj[1][bos] = 0.0

    logp = [np.zeros(1)]
    bow = [np.zeros(n) for n in (len(x) for x in keys)]
    # Unigrams: discounted, interpolated with the uniform distribution over the V - 1
    # predictable tokens (so tokens never seen still get a probability).
    D = _discounts(adj[1][adj[1] > 0])
    c1 = adj[1]
    total = c1.sum()
    gamma0 = _gamma(c1, D) / total
    p1 = np.maximum(c1 - D[np.minimum(c1, 3).astype(int)], 0) / total + gamma0 / (V - 1)
    p1[bos] = 1.0  # never predicted; any value (it is a history only)
    logp.append(np.log(p1))
    for k in range(2, order + 1):
        c = adj[k]
        D = _discounts(c)
        par = parents[k]
        n_par = order_start[k] - order_start[k - 1]
        par_local = par - order_start[k - 1]
        denom = np.bincount(par_local, weights=c, minlength=n_par)
        disc = D[np.minimum(c, 3).astype(int)]
        gam = np.bincount(par_local, weights=disc, minlength=n_par) / np.maximum(denom, 1e-300)
        lower = logp[k - 1][suffix[k] - order_start[k - 1]]
        p = (c - disc) / denom[par_local] + gam[par_local] * np.exp(lower)
        logp.append(np.log(p))
        has_children = denom > 0
        bow[k - 1][has_children] = np.log(gam[has_children])
    return {
        "keys": np.concatenate(keys), "logp": np.concatenate(logp), "bow": np.concatenate(bow),
        "suffix": np.concatenate(suffix), "order_start": order_start,
        "V": np.array(V, np.int64), "order": np.array(order, np.int64),
    }


def _gamma(c: np.ndarray, D: np.ndarray) -> float:
    return float(D[np.minimum(c, 3).astype(int)][c > 0].sum())


def _first_token(k: int, keys: list, parents: list, order_start: np.ndarray, V: int) -> np.ndarray:
    """(n_k,) the first token of every k-gram (follow parents down to the unigram)."""
    node = order_start[k] + np.arange(len(keys[k]))
    for j in range(k, 1, -1):
        node = parents[j][node - order_start[j]]
    return node - 1


@numba.njit(cache=True)
def find_child(keys, order_start, node_order, node, token, V) -> int:
    """Node of ``(history node, token)`` or -1 (binary search in the next order's segment)."""
    k = node_order[node] + 1
    if k >= order_start.shape[0] - 1:
        return -1
    lo, hi = order_start[k], order_start[k + 1]
    key = node * V + token
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < order_start[k + 1] and keys[lo] == key:
        return lo
    return -1


@numba.njit(cache=True)
def score_token(keys, logp, bow, suffix, order_start, node_order, max_order, history, token, V):
    """``(ln p(token | history), next history node)``; ``history`` is a node (0 = root)."""
    acc = 0.0
    h = history
    while True:
        if h == 0:
            node = 1 + token
            break
        node = find_child(keys, order_start, node_order, h, token, V)
        if node >= 0:
            break
        acc += bow[h]
        h = suffix[h]
    lp = acc + logp[node]
    # The next history is the longest suffix of (history, token) that can still be extended.
    nxt = node
    if node_order[nxt] >= max_order:
        nxt = suffix[nxt]
    return lp, nxt


def node_orders(order_start: np.ndarray) -> np.ndarray:
    """(N,) int64: the order of every node (0 for the root)."""
    return np.repeat(np.arange(len(order_start) - 1), np.diff(order_start)).astype(np.int64)
