"""The AMX bf16 GEMM (asrkd.train.amx_gemm) against float64 references: odd shapes (tails in M, N
and K), both B layouts, strided rows, the bias + ReLU epilogue, NaN/inf propagation, and the
result's independence of the thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from asrkd.train import amx_gemm

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


def test_fast_step_with_amx_matches_autograd_and_the_onednn_step(monkeypatch):
    """The bf16 step with the AMX GEMM in every forward, input gradient and weight gradient
    (threshold lowered to reach the small test model; its widths 96 and 50 are not multiples of
    64, so every weight gradient takes it too) against the oneDNN step and the autocast + autograd
    reference, within test_fast_dnn's tolerances. A batch of 2048 also takes the padded-row h^T buffer."""
    from asrkd.models import ModelConfig, build_model
    from asrkd.train import fast_dnn
    from asrkd.train.config import load_train_config
    from asrkd.train.data import Batch
    from asrkd.train.step import Stepper, make_optimizer

    cfg = load_train_config(None, ["precision=bf16", "optim.grad_clip=0.05"])
    mc = ModelConfig(left_context=2, right_context=2, feat_dim=8, num_layers=3, hidden_dim=96, num_classes=50)
    torch.manual_seed(0)
    n = 2048
    batch = Batch(x=torch.randn(n, 5, 8), labels=torch.randint(0, 50, (n,)), utts=torch.zeros(n, dtype=torch.long),
                  frames=torch.zeros(n, dtype=torch.long))
    calls = {"n": 0}
    orig = amx_gemm.matmul

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return orig(*a, **kw)
    monkeypatch.setattr(amx_gemm, "matmul", spy)
    runs = {}
    for name, min_k in (("amx", 0), ("onednn", None), ("autograd", None)):
        monkeypatch.setattr(fast_dnn, "AMX_MIN_K", min_k)
        torch.manual_seed(1)
        model = build_model(mc)
        s = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
        assert s.fast is not None
        if name == "autograd":
            s.fast = None
        before = calls["n"]
        results = [s.step(batch, 1e-3) for _ in range(3)]
        # 4 layers: 4 forwards + 3 input gradients + 4 weight gradients per step on the AMX path
        assert calls["n"] - before == (3 * 11 if name == "amx" else 0)
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


def test_off_switch_makes_it_unavailable():
    """ASRKD_AMX=0: available() is False, so the step keeps oneDNN everywhere."""
    code = "from asrkd.train import amx_gemm; import sys; sys.exit(0 if not amx_gemm.available() else 1)"
    env = {**os.environ, "ASRKD_AMX": "0"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0
