"""Fused numba kernels of the bf16 CPU training step (:mod:`asrkd.kernels.fast_dnn`).

bf16 tensors are passed as their raw bits (``int16`` numpy views, ``t.view(torch.int16)``): a
bf16 value is the upper half of an fp32 value, so ``fp32_bits = bf16_bits << 16`` widens it
exactly and fp32 -> bf16 rounds to nearest even (as ``Tensor.to(torch.bfloat16)`` does). Each
kernel makes one pass over its arrays where the PyTorch ops it replaces make several (the step is
memory-bound outside the matmuls). Transposes go tile by tile through 8 x 8 blocks shuffled in
vector registers (:func:`_transpose8x8`), so that every global read and write is a contiguous
row piece. Row loops are written so LLVM vectorises them: no libm calls (:func:`_exp_nonpos`),
no index-tracking reductions, and outputs that never overlap inputs.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

TILE = 64  # rows/columns per tile (and rows per block of the row-parallel kernels)


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


@intrinsic
def _transpose8x8(typingctx, src, src_stride, dst, dst_stride):  # type: ignore[no-untyped-def]
    """Transpose one 8 x 8 block of 16-bit values: ``dst[c, r] = src[r, c]``.

    src, dst: addresses (intp) of the blocks' first elements; src_stride, dst_stride: row
    strides in elements. Eight 16-byte row loads, one 64-lane shuffle (vpermw/vpermt2w on
    AVX-512) and eight 16-byte row stores: a scalar element-by-element transpose is several
    times slower, and the transposes sit on the step's critical path.
    """
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        s, ss, d, ds = args
        i64, i32 = ir.IntType(64), ir.IntType(32)
        row_t = ir.VectorType(ir.IntType(16), 8)

        def addr(base, stride, k):  # type: ignore[no-untyped-def]
            off = builder.mul(stride, ir.Constant(i64, 2 * k))
            return builder.inttoptr(builder.add(base, off), row_t.as_pointer())

        def shuffle(a, b, idx):  # type: ignore[no-untyped-def]
            return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, len(idx)), idx))

        rows = [builder.load(addr(s, ss, r), align=2) for r in range(8)]
        pairs = [shuffle(rows[2 * k], rows[2 * k + 1], list(range(16))) for k in range(4)]
        quads = [shuffle(pairs[0], pairs[1], list(range(32))), shuffle(pairs[2], pairs[3], list(range(32)))]
        block = shuffle(quads[0], quads[1], list(range(64)))  # row-major 8 x 8
        undef = ir.Constant(block.type, None)
        block_t = shuffle(block, undef, [(j % 8) * 8 + j // 8 for j in range(64)])
        for c in range(8):
            builder.store(shuffle(block_t, undef, list(range(8 * c, 8 * c + 8))), addr(d, ds, c), align=2)
        return context.get_dummy_value()
    return types.void(types.intp, types.intp, types.intp, types.intp), codegen


@njit(inline="always", **_JIT)
def _transpose_tile(x: np.ndarray, x_t: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
    """x_t[c0:c1, r0:r1] = x[r0:r1, c0:c1]^T for 2-byte elements (C-contiguous rows)."""
    xs, ts = x.ctypes.data, x_t.ctypes.data
    sx, st = x.strides[0] // 2, x_t.strides[0] // 2
    r8 = r0 + (r1 - r0) // 8 * 8
    c8 = c0 + (c1 - c0) // 8 * 8
    for c in range(c0, c8, 8):
        for r in range(r0, r8, 8):
            _transpose8x8(xs + 2 * (r * sx + c), sx, ts + 2 * (c * st + r), st)
    for c in range(c0, c1):  # tails (sizes not multiples of 8)
        lo = r0 if c >= c8 else r8
        for r in range(lo, r1):
            x_t[c, r] = x[r, c]


@njit(parallel=True, **_JIT)
def transpose(x: np.ndarray, x_t: np.ndarray) -> None:
    """x_t = x^T for 2-byte elements, tile by tile. x: (N, O); x_t: (O, N), both C-contiguous."""
    n_rows, n_cols = x.shape
    # Column stripes: each 64 x 64 tile reads and writes whole 128-byte row pieces.
    for cb in prange((n_cols + TILE - 1) // TILE):
        c0 = cb * TILE
        c1 = min(c0 + TILE, n_cols)
        for r0 in range(0, n_rows, TILE):
            _transpose_tile(x, x_t, r0, min(r0 + TILE, n_rows), c0, c1)


@njit(inline="always", **_JIT)
def _sum_rows(parts: np.ndarray, out: np.ndarray, c0: int, c1: int) -> None:
    """out[c0:c1] = parts[:, c0:c1].sum(0) (the per-row-block partial sums of a kernel)."""
    for c in range(c0, c1):
        out[c] = 0.0
    for b in range(parts.shape[0]):
        pb = parts[b]
        for c in range(c0, c1):
            out[c] += pb[c]


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
    dz must not overlap g: LLVM then skips the vectorised loop (several times slower).
    """
    n_rows, n_cols = g.shape
    n_blocks = (n_rows + TILE - 1) // TILE
    scaled = scale != 1.0
    s32 = np.float32(scale)
    zero = np.int16(0)
    parts = np.empty((n_blocks, n_cols), np.float32)  # per row block: threads never share a sum
    # Row blocks: whole contiguous rows, so the loop over a row vectorises; the block's rows of
    # h are then transposed while still in cache (h comes from the forward, long out of cache).
    for b in prange(n_blocks):
        acc = parts[b]
        acc[:] = 0.0
        r0, r1 = b * TILE, min(b * TILE + TILE, n_rows)
        for r in range(r0, r1):
            gr, hr, dzr = g[r], h[r], dz[r]
            for c in range(n_cols):
                v = gr[c]
                if relu:
                    v = v if hr[c] > zero else zero
                if scaled:
                    v = f32_to_bf16(bf16_to_f32(v) * s32)
                dzr[c] = v
                acc[c] += bf16_to_f32(v)
        if want_t:
            for c0 in range(0, n_cols, TILE):
                _transpose_tile(h, h_t, r0, r1, c0, min(c0 + TILE, n_cols))
    for cb in prange((n_cols + TILE - 1) // TILE):
        _sum_rows(parts, db, cb * TILE, min(cb * TILE + TILE, n_cols))


@njit(inline="always", fastmath={"contract"}, error_model="numpy")
def _exp_nonpos(x: np.float32) -> np.float32:
    """exp(x) for x <= 0 in fp32 (Cephes expf: range reduction + degree-6 polynomial, ~1 ulp).

    Plain arithmetic, so loops over it vectorise (a libm ``expf`` call per element does not).
    Below -87 the result is flushed to ~0 (exp(-87) ~ 1.6e-38; these are softmax terms).
    """
    x = max(x, np.float32(-87.0))
    k = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
    f = x - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * f + np.float32(1.3981999507e-3)
    p = p * f + np.float32(8.3334519073e-3)
    p = p * f + np.float32(4.1665795894e-2)
    p = p * f + np.float32(1.6666665459e-1)
    p = p * f + np.float32(5.0000001201e-1)
    y = p * f * f + f + np.float32(1.0)
    return y * _f32_from_bits(np.uint32(np.int32(k) + np.int32(127)) << np.uint32(23))


@njit(parallel=True, fastmath={"reassoc", "contract"}, **_JIT)  # reassoc: vectorised sums
def softmax_xent(z: np.ndarray, labels: np.ndarray, inv_n: float, dz: np.ndarray, db: np.ndarray
                 ) -> tuple[float, int]:
    """Mean cross-entropy of bf16 logits against hard labels, its gradient, and the argmax hits.

    z: (N, C) bf16 bits; labels: (N,) int64 in [0, C); inv_n: 1 / (frames averaged over).
    Writes dz = (softmax(z) - onehot(labels)) * inv_n: (N, C) bf16 bits (the gradient
    ``F.cross_entropy(z.float(), labels)`` backpropagates, rounded to bf16 as the bf16 step does)
    and db = sum_n dz[n]: (C,) fp32. Returns (sum over frames of the per-frame loss in fp64,
    number of frames whose first maximal logit is the label). A frame with a non-finite logit
    has a NaN loss (the step is then skipped as non-finite).
    """
    n_rows, n_cols = z.shape
    n_blocks = (n_rows + TILE - 1) // TILE
    parts = np.empty((n_blocks, n_cols), np.float32)
    losses = np.empty(n_rows, np.float64)
    hits = np.empty(n_rows, np.int64)
    inv = np.float32(inv_n)
    for b in prange(n_blocks):
        e = np.empty(n_cols, np.float32)
        acc = parts[b]
        acc[:] = 0.0
        for r in range(b * TILE, min(b * TILE + TILE, n_rows)):
            zr, dzr, y = z[r], dz[r], labels[r]
            m = bf16_to_f32(zr[0])
            bad = np.float32(0.0)
            for j in range(n_cols):  # no index in this loop, so it vectorises
                v = bf16_to_f32(zr[j])
                bad += v * np.float32(0.0)  # NaN if any logit is inf or NaN
                m = max(m, v)
            arg = 0
            while arg < n_cols - 1 and bf16_to_f32(zr[arg]) != m:  # the first maximum (torch.argmax)
                arg += 1
            s = np.float32(0.0)
            for j in range(n_cols):
                ej = _exp_nonpos(bf16_to_f32(zr[j]) - m)
                e[j] = ej
                s += ej
            scale = inv / s
            for j in range(n_cols):
                bits = f32_to_bf16(e[j] * scale)
                dzr[j] = bits
                acc[j] += bf16_to_f32(bits)
            target = f32_to_bf16(e[y] * scale - inv)
            acc[y] += bf16_to_f32(target) - bf16_to_f32(dzr[y])
            dzr[y] = target
            losses[r] = np.float64(m) + np.log(np.float64(s)) - np.float64(bf16_to_f32(zr[y])) + bad
            hits[r] = 1 if arg == y else 0
    for cb in prange((n_cols + TILE - 1) // TILE):
        _sum_rows(parts, db, cb * TILE, min(cb * TILE + TILE, n_cols))
    return losses.sum(), hits.sum()


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
