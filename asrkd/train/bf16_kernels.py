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
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

TILE = 64  # rows/columns per tile: a 64 x 64 fp32 tile (16 kB) stays in L1


# error_model="numpy": division without Python's zero check, which would stop LLVM vectorising.
_JIT = dict(cache=True, error_model="numpy")


@intrinsic
def _f32_from_bits(typingctx, bits):  # type: ignore[no-untyped-def]
    """uint32 -> float32 with the same bits (a register move)."""
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


@intrinsic
def _bits_from_f32(typingctx, x):  # type: ignore[no-untyped-def]
    """float32 -> uint32 with the same bits."""
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


@njit(inline="always", error_model="numpy")
def bf16_to_f32(b: np.int16) -> np.float32:
    """bf16 bits -> its (exact) fp32 value."""
    return _f32_from_bits(np.uint32(np.uint16(b)) << np.uint32(16))


@njit(inline="always", error_model="numpy")
def f32_to_bf16(x: np.float32) -> np.int16:
    """fp32 -> bf16 bits, round to nearest even (as ``Tensor.to(torch.bfloat16)``); NaN stays NaN."""
    bits = _bits_from_f32(x)
    rounded = (bits + ((bits >> np.uint32(16)) & np.uint32(1)) + np.uint32(0x7FFF)) >> np.uint32(16)
    quiet = (bits >> np.uint32(16)) | np.uint32(0x40)
    return np.int16(np.uint16(quiet if x != x else rounded))


@njit(parallel=True, **_JIT)
def relu_backward_t(g: np.ndarray, h: np.ndarray, relu: bool, scale: float,
                    dz: np.ndarray, db: np.ndarray, h_t: np.ndarray, want_t: bool) -> None:
    """Gradient at a layer's pre-activation, the bias gradient, and the layer output transposed.

    g: (N, O) bf16 bits, gradient w.r.t. the layer output ``h``; h: (N, O) bf16 bits, the layer
    output after ReLU (and dropout); ``relu`` False: no mask (the logits layer).
    Writes dz = g * [h > 0] * scale: (N, O) bf16 bits, db = sum_n dz[n]: (O,) fp32, and
    if ``want_t``, h_t = h^T: (O, N) bf16 bits (the next layer's weight gradient contracts over the batch, and
    oneDNN wants that operand batch-contiguous). ``scale`` is the dropout 1 / (1 - p). A bf16
    value is > 0 exactly when its bits, read as int16, are > 0 (sign bit clear, not +0).
    """
    n_rows, n_cols = g.shape
    n_blocks = (n_cols + TILE - 1) // TILE
    scaled = scale != 1.0
    s32 = np.float32(scale)
    zero = np.int16(0)
    for cb in prange(n_blocks):
        c0 = cb * TILE
        nc = min(TILE, n_cols - c0)
        acc = np.zeros(TILE, np.float32)
        for r0 in range(0, n_rows, TILE):
            nr = min(TILE, n_rows - r0)
            for rr in range(nr):
                gr, hr, dzr = g[r0 + rr, c0:c0 + nc], h[r0 + rr, c0:c0 + nc], dz[r0 + rr, c0:c0 + nc]
                for cc in range(nc):
                    v = gr[cc]
                    if relu:
                        v = v if hr[cc] > zero else zero
                    if scaled:
                        v = f32_to_bf16(bf16_to_f32(v) * s32)
                    dzr[cc] = v
                    acc[cc] += bf16_to_f32(v)
            if want_t:
                for cc in range(nc):
                    for rr in range(nr):
                        h_t[c0 + cc, r0 + rr] = h[r0 + rr, c0 + cc]
        for cc in range(nc):
            db[c0 + cc] = acc[cc]


@njit(parallel=True, **_JIT)
def transpose(x: np.ndarray, x_t: np.ndarray) -> None:
    """x_t = x^T for 2-byte elements, tile by tile. x: (N, O); x_t: (O, N)."""
    n_rows, n_cols = x.shape
    for cb in prange((n_cols + TILE - 1) // TILE):
        c0 = cb * TILE
        nc = min(TILE, n_cols - c0)
        for r0 in range(0, n_rows, TILE):
            nr = min(TILE, n_rows - r0)
            for cc in range(nc):
                for rr in range(nr):
                    x_t[c0 + cc, r0 + rr] = x[r0 + rr, c0 + cc]


@njit(parallel=True, fastmath=True, **_JIT)  # fastmath: the sum may be reassociated (vectorised)
def sumsq_bf16(x: np.ndarray) -> float:
    """Sum of squares of a flat bf16-bits array, accumulated in fp32 per chunk, fp64 overall."""
    n = x.size
    chunk = 1 << 14
    n_chunks = (n + chunk - 1) // chunk
    parts = np.zeros(n_chunks, np.float64)
    for k in prange(n_chunks):
        y = x[k * chunk:min(k * chunk + chunk, n)]  # zero-based loops vectorise; offset ones do not
        s = np.float32(0.0)
        for i in range(y.size):
            f = bf16_to_f32(y[i])
            s += f * f
        parts[k] = s
    return parts.sum()


@njit(inline="always", error_model="numpy")
def _adam_elem(p: np.ndarray, m: np.ndarray, v: np.ndarray, p_lo: np.ndarray, i: int, gr: np.float32,
               one_b1: np.float32, b2: np.float32, one_b2: np.float32, e: np.float32, wd: np.float32,
               ss: np.float32, bc2: np.float32) -> None:
    w = p[i]
    if wd != 0:
        gr = gr + wd * w
    mm = m[i]
    mm = mm + one_b1 * (gr - mm)
    vv = b2 * v[i] + one_b2 * gr * gr
    m[i] = mm
    v[i] = vv
    w = w - ss * mm / (np.sqrt(vv) / bc2 + e)
    p[i] = w
    p_lo[i] = f32_to_bf16(w)


@njit(parallel=True, **_JIT)
def adam(p: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, p_lo: np.ndarray,
         inv_scale: float, beta1: float, beta2: float, eps: float, weight_decay: float,
         step_size: float, bc2_sqrt: float) -> None:
    """One Adam update from a bf16 gradient, writing the bf16 copy of the weights too.

    p, m, v: flat fp32 weights and moments (updated in place); g: flat bf16 bits (int16);
    p_lo: flat bf16 bits, receives the updated weights (the copy the matmuls use). Same
    arithmetic as PyTorch's fused Adam: g = g * inv_scale (+ weight_decay * p);
    m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2; p -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
    """
    n = p.size
    one_b1, b2, one_b2 = np.float32(1.0 - beta1), np.float32(beta2), np.float32(1.0 - beta2)
    e, wd, ss, bc2 = np.float32(eps), np.float32(weight_decay), np.float32(step_size), np.float32(bc2_sqrt)
    inv = np.float32(inv_scale)
    chunk = 1 << 14
    for k in prange((n + chunk - 1) // chunk):
        a, b = k * chunk, min(k * chunk + chunk, n)  # zero-based loops over slices vectorise
        pk, mk, vk, gk, lk = p[a:b], m[a:b], v[a:b], g[a:b], p_lo[a:b]
        for i in range(b - a):
            _adam_elem(pk, mk, vk, lk, i, bf16_to_f32(gk[i]) * inv, one_b1, b2, one_b2, e, wd, ss, bc2)


@njit(**_JIT)
def adam_f32(p: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, p_lo: np.ndarray,
             inv_scale: float, beta1: float, beta2: float, eps: float, weight_decay: float,
             step_size: float, bc2_sqrt: float) -> None:
    """:func:`adam` with an fp32 gradient (the biases: small, one thread)."""
    one_b1, b2, one_b2 = np.float32(1.0 - beta1), np.float32(beta2), np.float32(1.0 - beta2)
    e, wd, ss, bc2 = np.float32(eps), np.float32(weight_decay), np.float32(step_size), np.float32(bc2_sqrt)
    inv = np.float32(inv_scale)
    for i in range(p.size):
        _adam_elem(p, m, v, p_lo, i, g[i] * inv, one_b1, b2, one_b2, e, wd, ss, bc2)
