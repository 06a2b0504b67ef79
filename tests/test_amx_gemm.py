"""The AMX bf16 GEMM (asrkd.kernels.amx_gemm) against float64 references: odd shapes (tails in M, N
and K), both B layouts, strided rows, the bias + ReLU epilogue, NaN/inf propagation, and the
result's independence of the thread count; the input gradient fused with the ReLU backward
against the unfused path (GEMM, then bf16_kernels.relu_backward_t) bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkd.kernels import amx_gemm
from asrkd.kernels import bf16_kernels as K

pytestmark = pytest.mark.skipif(not amx_gemm.available(),
                                reason="no AMX here (CPU flags amx_tile/amx_bf16, OS permission or C build)")

# (M, K, N): tails in every dimension (tiles are 32 x 32 x 32), K > one K chunk, K % 32 == 16
# (the 1040-input layer and the 2000-class dgrad), one-element extremes.
SHAPES = [(1, 1, 1), (5, 7, 3), (33, 45, 70), (64, 64, 64), (31, 300, 33), (17, 1040, 50), (97, 2000, 130),
          (300, 520, 290)]


def _bound(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, ref: torch.Tensor) -> torch.Tensor:
    """Per-element error allowed: one bf16 rounding of the result (half an ulp: at most 2^-8 relative)
    plus fp32 accumulation over K terms (K * 2^-24 of the sum of magnitudes, doubled for slack)."""
    k = a.shape[1]
    mag = a.double().abs() @ b.double().abs()
    if bias is not None:
        mag = mag + bias.double().abs()
    return 2.0 ** -8 * ref.abs() * 1.01 + (k + 1) * 2.0 ** -23 * mag * 1.01 + 1e-30


def _operands(m: int, k: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=g).to(torch.bfloat16)
    b = torch.randn(k, n, generator=g).to(torch.bfloat16)
    bias = torch.randn(n, generator=g).to(torch.bfloat16)
    return a, b, bias


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("b_transposed", [False, True])
def test_matches_float64_reference_in_both_layouts(shape: tuple[int, int, int], b_transposed: bool):
    m, k, n = shape
    a, b, _ = _operands(m, k, n, seed=m * 7 + k)
    bb = b.t().contiguous() if b_transposed else b
    c = amx_gemm.matmul(a, bb, b_transposed=b_transposed, threads=2)
    ref = a.double() @ b.double()
    assert c.dtype == torch.bfloat16 and c.shape == (m, n)
    assert bool(((c.double() - ref).abs() <= _bound(a, b, None, ref)).all())
    # the same values as torch's bf16 matmul up to the order of the fp32 additions
    t = a @ b
    assert float((c.double() - t.double()).abs().max()) <= float((2 * _bound(a, b, None, ref)).max())


@pytest.mark.parametrize("shape", [(5, 7, 3), (33, 45, 70), (97, 1040, 130)])
@pytest.mark.parametrize("relu", [False, True])
def test_bias_and_relu_epilogue(shape: tuple[int, int, int], relu: bool):
    m, k, n = shape
    a, b, bias = _operands(m, k, n, seed=k)
    c = amx_gemm.matmul(a, b, bias=bias, relu=relu)
    ref = a.double() @ b.double() + bias.double()
    if relu:
        ref = ref.relu()
        assert bool((c >= 0).all())
    assert bool(((c.double() - ref).abs() <= _bound(a, b, bias, ref)).all())


def test_forward_matches_onednn_linear_layout():
    """The step's forward: x (N, in) @ w (in, out) + b, ReLU, as oneDNN's fused linear."""
    x, w, bias = _operands(130, 1040, 96, seed=1)
    c = amx_gemm.matmul(x, w, bias=bias, relu=True)
    ref = torch.ops.mkldnn._linear_pointwise(x, w.t(), bias, "relu", [], "")
    # both round an fp32 sum once: they differ by at most one bf16 ulp, and rarely
    diff = (c.float() - ref.float()).abs()
    assert bool((diff <= ref.float().abs() * 2 ** -7 + 1e-6).all())
    assert int((c != ref).sum()) <= c.numel() // 20


def test_strided_rows_and_out_buffer():
    """Row strides larger than the row (column slices of wider arrays), written into a slice."""
    m, k, n = 40, 70, 50
    a_big, b_big, _ = _operands(m, k + 9, n + 5, seed=3)
    a, b = a_big[:, :k], b_big[:k, 2:n + 2]
    out_big = torch.full((m, n + 11), 7.0, dtype=torch.bfloat16)
    out = out_big[:, 3:n + 3]
    amx_gemm.matmul(a, b, out=out)
    ref = a.double() @ b.double()
    assert bool(((out.double() - ref).abs() <= _bound(a, b, None, ref)).all())
    assert bool((out_big[:, :3] == 7).all()) and bool((out_big[:, n + 3:] == 7).all())  # nothing else written


def test_weight_gradient_layout_with_padded_rows():
    """The step's weight gradient: h^T (in, N) as a view of rows padded to N + 32 (the step's
    h^T buffer), times dz (N, out) with out not a multiple of 64 (the 2000-class layer's case)."""
    n, d_in, d_out = 256, 130, 100
    g = torch.Generator().manual_seed(7)
    h_t = torch.randn(d_in, n + 32, generator=g).to(torch.bfloat16)[:, :n]
    dz = (torch.randn(n, d_out, generator=g) * 1e-3).to(torch.bfloat16)
    gw = amx_gemm.matmul(h_t, dz, out=torch.empty(d_in, d_out, dtype=torch.bfloat16))
    ref = h_t.double() @ dz.double()
    assert bool(((gw.double() - ref).abs() <= _bound(h_t, dz, None, ref)).all())


def test_result_does_not_depend_on_thread_count():
    a, b, bias = _operands(200, 300, 130, seed=5)
    one = amx_gemm.matmul(a, b, bias=bias, threads=1)
    for t in (2, 3):
        assert torch.equal(amx_gemm.matmul(a, b, bias=bias, threads=t), one)


@pytest.mark.parametrize("b_transposed", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_nan_and_inf_propagate(b_transposed: bool, relu: bool):
    m, k, n = 37, 70, 45  # K tail: a non-finite value in the last, zero-padded K step too
    a, b, bias = _operands(m, k, n, seed=11)
    a[3, 5] = float("nan")
    a[6, k - 1] = float("inf")
    a[9, 0] = float("inf")  # right after row 8's end: a kernel reading past K would turn row 8 into NaN
    b[k - 2, 40] = float("-inf")
    b[10, 7] = float("nan")
    bb = b.t().contiguous() if b_transposed else b
    c = amx_gemm.matmul(a, bb, b_transposed=b_transposed, bias=bias, relu=relu)
    ref = a.double() @ b.double() + bias.double()
    if relu:
        ref = torch.where(ref.isnan(), ref, ref.clamp_min(0))  # ReLU keeps NaN, as torch.relu
    assert torch.equal(c.isnan(), ref.isnan())
    assert torch.equal(c.isinf(), ref.isinf())
    assert torch.equal(c[c.isinf()], ref[ref.isinf()].to(torch.bfloat16))
    fin = ref.isfinite()
    bound = _bound(a.nan_to_num(0, 0, 0), b.nan_to_num(0, 0, 0), bias, ref)
    assert bool(((c.double() - ref).abs()[fin] <= bound[fin]).all())


def _relu_bwd_operands(m: int, k: int, n: int, seed: int, special: bool
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dz_above (M, K), w (N, K) (the step's b_transposed layout), h (M, N): a ReLU output
    (about half zeros), with ``special`` non-finite values in the GEMM operands and in h, and
    h = -0 (which masks, as +0 does)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=g).to(torch.bfloat16)
    w = torch.randn(n, k, generator=g).to(torch.bfloat16)
    h = torch.randn(m, n, generator=g).relu().to(torch.bfloat16)
    if special:
        a[min(3, m - 1), 0] = float("nan")
        h[min(3, m - 1)] = 1.0  # that NaN row of g is not masked away
        a[m // 2, k - 1] = float("inf")
        w[n - 1, k // 2] = float("-inf")
        h[0, 0] = float("nan")
        h[m - 1, n - 1] = -float("nan")  # sign bit set: masks, as relu_backward_t's int16 test does
        h[m // 3, n // 2] = float("inf")
        h[m // 2, 0] = -0.0
        h[m - 1, 0] = -1.0
    return a, w, h


def _bits_of(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int16).numpy()


def _unfused(a: torch.Tensor, w: torch.Tensor, h: torch.Tensor, scale: float, threads: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The step's unfused path: g = a @ w^T in bf16, then relu_backward_t -> (dz, db, h^T)."""
    m, n = h.shape
    g = amx_gemm.matmul(a, w, b_transposed=True, threads=threads)
    dz, db = torch.empty(m, n, dtype=torch.bfloat16), torch.empty(n)
    h_t = torch.zeros(n, m, dtype=torch.bfloat16)
    K.relu_backward_t(_bits_of(g), _bits_of(h), True, scale, _bits_of(dz), db.numpy(), _bits_of(h_t), True)
    return dz, db, h_t


def _fused(a: torch.Tensor, w: torch.Tensor, h: torch.Tensor, scale: float, threads: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (dz, db, h^T, the padded h^T buffer (N, M + 32) it is a view of)."""
    m, n = h.shape
    dz, db = torch.full((m, n), 3.0, dtype=torch.bfloat16), torch.full((n,), 5.0)
    ht_buf = torch.full((n, m + 32), 7.0, dtype=torch.bfloat16)  # rows padded as the step's h^T buffer
    amx_gemm.dgrad_relu_backward(a, w, h, b_transposed=True, scale=scale, out=dz, db=db, h_t=ht_buf[:, :m],
                                 threads=threads)
    return dz, db, ht_buf[:, :m], ht_buf


def _same_bits(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Bitwise equality (signed zeros and, in bf16, NaN payloads included). In the fp32 bias
    gradient only the NaN positions must agree: a sum of two different NaNs is the first
    operand's on x86, and LLVM may commute the additions of relu_backward_t's vectorised loop."""
    if x.dtype == torch.float32:
        nan = x.isnan()
        return torch.equal(nan, y.isnan()) and np.array_equal(x[~nan].numpy().view(np.int32),
                                                              y[~nan].numpy().view(np.int32))
    return np.array_equal(_bits_of(x.contiguous()), _bits_of(y.contiguous()))


# (M, K, N): M below, at and across the 32-row panels and the 64-row bias-sum blocks (97 = 64 + 33,
# 161 = 2 * 64 + 33, 70 = 64 + 6), N tails in both 16-column halves, K tails.
RELU_BWD_SHAPES = [(1, 1, 1), (5, 7, 3), (33, 45, 70), (64, 32, 32), (70, 64, 17), (97, 300, 130),
                   (161, 70, 47), (200, 1040, 96)]


@pytest.mark.parametrize("shape", RELU_BWD_SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1.0 / 0.9])
@pytest.mark.parametrize("special", [False, True])
def test_fused_relu_backward_equals_the_unfused_path_bit_for_bit(shape: tuple[int, int, int], scale: float,
                                                                 special: bool):
    m, k, n = shape
    a, w, h = _relu_bwd_operands(m, k, n, seed=m + 3 * n, special=special)
    dz0, db0, ht0 = _unfused(a, w, h, scale, threads=2)
    dz, db, h_t, ht_buf = _fused(a, w, h, scale, threads=2)
    assert _same_bits(dz, dz0) and _same_bits(db, db0) and _same_bits(h_t, ht0)
    assert _same_bits(h_t, h.t())
    assert bool((ht_buf[:, m:] == 7).all())  # the padding is not written
    if special and m >= 5:  # the non-finite values reached the outputs (else the test would not test them)
        assert bool(dz.isnan().any()) and bool(db.isnan().any())
    # the mask: zero wherever h <= 0 (dropped units included), whatever g is
    assert bool((dz[~(h > 0) & ~h.isnan()] == 0).all())


def test_fused_relu_backward_does_not_depend_on_thread_count():
    a, w, h = _relu_bwd_operands(161, 300, 200, seed=9, special=False)
    one = _fused(a, w, h, 1.0 / 0.8, threads=1)
    for t in (2, 3, 7):
        other = _fused(a, w, h, 1.0 / 0.8, threads=t)
        assert all(_same_bits(x, y) for x, y in zip(one[:3], other[:3]))


def test_fused_relu_backward_without_transpose_leaves_the_rest_equal():
    a, w, h = _relu_bwd_operands(97, 64, 70, seed=4, special=False)
    dz0, db0, _ = _unfused(a, w, h, 1.0, threads=2)
    dz, db = torch.empty(97, 70, dtype=torch.bfloat16), torch.empty(70)
    amx_gemm.dgrad_relu_backward(a, w, h, b_transposed=True, out=dz, db=db, h_t=None)
    assert _same_bits(dz, dz0) and _same_bits(db, db0)


def test_fast_step_with_amx_matches_autograd_and_the_onednn_step(monkeypatch):
    """The bf16 step with the AMX GEMM in every forward, input gradient and weight gradient
    (threshold lowered to reach the small test model; its widths 96 and 50 are not multiples of
    64, so every weight gradient takes it too) against the oneDNN step and the autocast + autograd
    reference, within test_fast_dnn's tolerances. A batch of 2048 also takes the padded-row h^T buffer."""
    from asrkd.models import ModelConfig, build_model
    from asrkd.kernels import fast_dnn
    from asrkd.train.config import load_train_config
    from asrkd.train.data import Batch
    from asrkd.train.step import Stepper, make_optimizer

    cfg = load_train_config(None, ["precision=bf16", "optim.grad_clip=0.05"])
    mc = ModelConfig(left_context=2, right_context=2, feat_dim=8, num_layers=3, hidden_dim=96, num_classes=50)
    torch.manual_seed(0)
    n = 2048
    batch = Batch(x=torch.randn(n, 5, 8), labels=torch.randint(0, 50, (n,)), utts=torch.zeros(n, dtype=torch.long),
                  frames=torch.zeros(n, dtype=torch.long))
    calls = {"n": 0, "fused": 0}
    orig, orig_fused = amx_gemm.matmul, amx_gemm.dgrad_relu_backward

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return orig(*a, **kw)

    def spy_fused(*a, **kw):  # type: ignore[no-untyped-def]
        calls["fused"] += 1
        return orig_fused(*a, **kw)
    monkeypatch.setattr(amx_gemm, "matmul", spy)
    monkeypatch.setattr(amx_gemm, "dgrad_relu_backward", spy_fused)
    runs = {}
    for name, min_k in (("amx", 0), ("onednn", None), ("autograd", None)):
        monkeypatch.setattr(fast_dnn, "AMX_MIN_K", min_k)
        torch.manual_seed(1)
        model = build_model(mc)
        s = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
        assert s.fast is not None
        if name == "autograd":
            s.fast = None
        before, before_fused = calls["n"], calls["fused"]
        results = [s.step(batch, 1e-3) for _ in range(3)]
        # 4 layers: 4 forwards + 4 weight gradients per step on the AMX GEMM, and the 3 input
        # gradients on its ReLU-backward-fused form
        assert calls["n"] - before == (3 * 8 if name == "amx" else 0)
        assert calls["fused"] - before_fused == (3 * 3 if name == "amx" else 0)
        runs[name] = (results, model)
    ref_results, ref_model = runs["autograd"]
    for name in ("amx", "onednn"):
        results, model = runs[name]
        for a, b in zip(results, ref_results):
            assert a.ok and b.ok
            assert a.loss == pytest.approx(b.loss, rel=2e-3)
            assert abs(a.correct - b.correct) <= 3
        for pa, pb in zip(model.state_dict().values(), ref_model.state_dict().values()):
            assert float((pa - pb).abs().max()) < 1.5e-3
            assert float((pa - pb).abs().mean()) < 1e-4


def test_fused_relu_backward_step_equals_the_unfused_step_with_dropout(monkeypatch):
    """Whole steps with dropout (the 1 / (1 - p) scale) and the fused input gradients give the
    same parameters, bit for bit, as with GEMM + relu_backward_t (same seed, same dropout masks)."""
    from asrkd.models import ModelConfig, build_model
    from asrkd.kernels import fast_dnn
    from asrkd.train.config import load_train_config
    from asrkd.train.data import Batch
    from asrkd.train.step import Stepper, make_optimizer

    cfg = load_train_config(None, ["precision=bf16"])
    mc = ModelConfig(left_context=2, right_context=2, feat_dim=8, num_layers=3, hidden_dim=96, num_classes=50,
                     dropout=0.2)
    torch.manual_seed(0)
    n = 333
    batch = Batch(x=torch.randn(n, 5, 8), labels=torch.randint(0, 50, (n,)), utts=torch.zeros(n, dtype=torch.long),
                  frames=torch.zeros(n, dtype=torch.long))
    monkeypatch.setattr(fast_dnn, "AMX_MIN_K", 0)
    states = []
    for fused in (True, False):
        monkeypatch.setattr(fast_dnn, "AMX_FUSED_RELU_BACKWARD", fused)
        torch.manual_seed(1)
        model = build_model(mc)
        s = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
        assert s.fast is not None and s.fast._dropout_on()
        assert all(s.step(batch, 1e-3).ok for _ in range(3))
        states.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*states))
