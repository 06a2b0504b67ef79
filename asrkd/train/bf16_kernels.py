"""Fused numba kernels of the bf16 CPU training step (:mod:`asrkd.train.fast_dnn`).

bf16 tensors are passed as their raw bits (``int16`` numpy views, ``t.view(torch.int16)``): a
bf16 value is the upper half of an fp32 value, so ``fp32_bits = bf16_bits << 16`` widens it
exactly and fp32 -> bf16 rounds to nearest even (as ``Tensor.to(torch.bfloat16)`` does). Each
kernel makes one pass over its arrays where the PyTorch ops it replaces make several (the step is
memory-bound outside the matmuls). Tiles are transposed through small local buffers so that every
global read and write is contiguous along rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TILE = 64  # rows/columns per tile: a 64 x 64 fp32 tile (16 kB) stays in L1


@njit(inline="always")
def _to_bf16_bits(bits: np.uint32) -> np.int16:
    """fp32 bits -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN."""
    if (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
        return np.int16(np.uint16((bits >> np.uint32(16)) | np.uint32(0x40)))
    rounding = ((bits >> np.uint32(16)) & np.uint32(1)) + np.uint32(0x7FFF)
    return np.int16(np.uint16((bits + rounding) >> np.uint32(16)))


@njit(parallel=True, cache=True, fastmath=False)
def relu_backward_t(g: np.ndarray, h: np.ndarray, relu: bool, scale: float,
                    dz: np.ndarray, dz_t: np.ndarray, db: np.ndarray) -> None:
    """Gradient at a layer's pre-activation, in both layouts, and the bias gradient.

    g: (N, O) bf16 bits, gradient w.r.t. the layer output ``h``; h: (N, O) bf16 bits, the layer
    output after ReLU (and dropout); ``relu`` False: no mask (the logits layer).
    Writes dz = g * [h > 0] * scale: (N, O) bf16 bits, dz_t = dz^T: (O, N) bf16 bits, and
    db = sum_n dz[n]: (O,) fp32 (accumulated in fp32). ``scale`` is the dropout 1 / (1 - p).
    A bf16 value is > 0 exactly when its bits, read as int16, are > 0 (sign bit clear, not +0).
    """
    n_rows, n_cols = g.shape
    n_blocks = (n_cols + TILE - 1) // TILE
    scaled = scale != 1.0
    s32 = np.float32(scale)
    for cb in prange(n_blocks):
        c0 = cb * TILE
        c1 = min(c0 + TILE, n_cols)
        wide = np.zeros((TILE, TILE), np.uint32)  # tile, transposed: [column, row]
        wide_f = wide.view(np.float32)
        acc = np.zeros(TILE, np.float64)
        for r0 in range(0, n_rows, TILE):
            r1 = min(r0 + TILE, n_rows)
            for r in range(r0, r1):
                for c in range(c0, c1):
                    v = g[r, c]
                    if relu and h[r, c] <= 0:
                        v = np.int16(0)
                    wide[c - c0, r - r0] = np.uint32(np.uint16(v)) << np.uint32(16)
                    if scaled:
                        x = wide_f[c - c0, r - r0] * s32
                        wide_f[c - c0, r - r0] = x
                        v = _to_bf16_bits(wide[c - c0, r - r0])
                        wide[c - c0, r - r0] = np.uint32(np.uint16(v)) << np.uint32(16)
                    dz[r, c] = v
            for c in range(c0, c1):
                s = np.float32(0.0)
                for r in range(r0, r1):
                    dz_t[c, r] = np.int16(np.uint16(wide[c - c0, r - r0] >> np.uint32(16)))
                    s += wide_f[c - c0, r - r0]
                acc[c - c0] += s
        for c in range(c0, c1):
            db[c] = acc[c - c0]


@njit(parallel=True, cache=True)
def sumsq_bf16(x: np.ndarray) -> float:
    """Sum of squares of a flat bf16-bits array, accumulated in fp64 per chunk."""
    n = x.size
    chunk = 1 << 16
    n_chunks = (n + chunk - 1) // chunk
    parts = np.zeros(n_chunks, np.float64)
    for k in prange(n_chunks):
        wide = np.empty(chunk, np.uint32)
        wide_f = wide.view(np.float32)
        a = k * chunk
        b = min(a + chunk, n)
        for i in range(a, b):
            wide[i - a] = np.uint32(np.uint16(x[i])) << np.uint32(16)
        s = np.float32(0.0)
        for i in range(b - a):
            s += wide_f[i] * wide_f[i]
        parts[k] = s
    return parts.sum()


@njit(parallel=True, cache=True)
def adam_t(p: np.ndarray, m: np.ndarray, v: np.ndarray, g_t: np.ndarray, p_t: np.ndarray,
           inv_scale: float, beta1: float, beta2: float, eps: float, weight_decay: float,
           step_size: float, bc2_sqrt: float) -> None:
    """One Adam update of a weight matrix from its transposed bf16 gradient, in one pass.

    p, m, v: (I, O) fp32 master weights and moments (updated in place); g_t: (O, I) bf16 bits,
    the gradient transposed; p_t: (O, I) bf16 bits, written with the updated weights transposed
    (the copy the next forward and backward multiply by). Same arithmetic as PyTorch's fused
    Adam: g = g * inv_scale (+ weight_decay * p); m = lerp(m, g, 1 - b1);
    v = b2 v + (1 - b2) g^2; p -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
    """
    n_in, n_out = p.shape
    n_blocks = (n_in + TILE - 1) // TILE
    inv = np.float32(inv_scale)
    b1 = np.float32(beta1)
    one_b1 = np.float32(1.0 - beta1)
    b2 = np.float32(beta2)
    one_b2 = np.float32(1.0 - beta2)
    e = np.float32(eps)
    wd = np.float32(weight_decay)
    ss = np.float32(step_size)
    bc2 = np.float32(bc2_sqrt)
    for ib in prange(n_blocks):
        i0 = ib * TILE
        i1 = min(i0 + TILE, n_in)
        wide = np.zeros((TILE, TILE), np.uint32)  # [i, o]
        wide_f = wide.view(np.float32)
        for o0 in range(0, n_out, TILE):
            o1 = min(o0 + TILE, n_out)
            for o in range(o0, o1):
                for i in range(i0, i1):
                    wide[i - i0, o - o0] = np.uint32(np.uint16(g_t[o, i])) << np.uint32(16)
            for i in range(i0, i1):
                for o in range(o0, o1):
                    gr = wide_f[i - i0, o - o0] * inv
                    w = p[i, o]
                    if wd != 0:
                        gr = gr + wd * w
                    mm = m[i, o]
                    mm = mm + one_b1 * (gr - mm)
                    vv = b2 * v[i, o] + one_b2 * gr * gr
                    m[i, o] = mm
                    v[i, o] = vv
                    w = w - ss * mm / (np.sqrt(vv) / bc2 + e)
                    p[i, o] = w
                    wide_f[i - i0, o - o0] = w
            for o in range(o0, o1):
                for i in range(i0, i1):
                    p_t[o, i] = _to_bf16_bits(wide[i - i0, o - o0])


@njit(cache=True)
def adam_vec(p: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, p_lo: np.ndarray,
             inv_scale: float, beta1: float, beta2: float, eps: float, weight_decay: float,
             step_size: float, bc2_sqrt: float) -> None:
    """:func:`adam_t` for a vector (a bias) with an fp32 gradient ``g``; p_lo: bf16 bits of p."""
    inv = np.float32(inv_scale)
    one_b1 = np.float32(1.0 - beta1)
    b2 = np.float32(beta2)
    one_b2 = np.float32(1.0 - beta2)
    e = np.float32(eps)
    wd = np.float32(weight_decay)
    ss = np.float32(step_size)
    bc2 = np.float32(bc2_sqrt)
    out = np.empty(1, np.float32)
    out_bits = out.view(np.uint32)
    for i in range(p.size):
        gr = g[i] * inv
        w = p[i]
        if wd != 0:
            gr = gr + wd * w
        mm = m[i] + one_b1 * (gr - m[i])
        vv = b2 * v[i] + one_b2 * gr * gr
        m[i] = mm
        v[i] = vv
        w = w - ss * mm / (np.sqrt(vv) / bc2 + e)
        p[i] = w
        out[0] = w
        p_lo[i] = _to_bf16_bits(out_bits[0])
