"""The fast bf16 step's newer pieces (asrkd.kernels.fast_dnn / bf16_kernels): the shuffle
transposes, the fused cross-entropy kernel, and the step paths it chooses between."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asrkd.softtargets.formats import SoftTargets
from asrkd.models import ModelConfig, build_model
from asrkd.kernels import bf16_kernels as K
from asrkd.train.config import load_train_config
from asrkd.train.data import Batch
from asrkd.train.step import Stepper, make_optimizer

pytestmark = pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="no CPU bf16")


def _bits(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int16).numpy()


@pytest.mark.parametrize("shape", [(8, 8), (64, 136), (130, 70), (3, 5), (1, 17), (200, 8)])
def test_transposes_match_torch_for_whole_blocks_and_tails(shape: tuple[int, int]):
    n, o = shape
    h = torch.randn(n, o).relu().to(torch.bfloat16)
    g = torch.randn(n, o).to(torch.bfloat16)
    x_t = torch.zeros(o, n, dtype=torch.bfloat16)
    K.transpose(_bits(h), _bits(x_t))
    assert torch.equal(x_t, h.t())
    dz, db, h_t = torch.empty_like(g), torch.empty(o), torch.zeros(o, n, dtype=torch.bfloat16)
    K.relu_backward_t(_bits(g), _bits(h), True, 1.0, _bits(dz), db.numpy(), _bits(h_t), True)
    ref = torch.ops.aten.threshold_backward(g, h, 0)
    assert torch.equal(h_t, h.t()) and torch.equal(dz, ref)
    torch.testing.assert_close(db, ref.float().sum(0), rtol=1e-5, atol=1e-5)


def test_softmax_xent_matches_cross_entropy_and_argmax():
    torch.manual_seed(0)
    n, c = 257, 70  # rows not a multiple of the row block
    z = (torch.randn(n, c) * 4).to(torch.bfloat16)
    z[0] = 0.0
    z[0, 3] = z[0, 7] = 5.0  # tied maxima: the first one is the argmax
    y = torch.randint(0, c, (n,))
    y[0] = 7
    zf = z.float().requires_grad_()
    ref = F.cross_entropy(zf, y)
    ref.backward()
    assert zf.grad is not None
    ref_g = zf.grad.to(torch.bfloat16)
    dz, db = torch.empty_like(z), torch.empty(c)
    total, hits = K.softmax_xent(_bits(z), y.numpy(), 1.0 / n, _bits(dz), db.numpy())
    assert total / n == pytest.approx(float(ref.detach()), rel=1e-6)
    assert hits == int((z.float().argmax(-1) == y).sum())
    # fp32 rounding differences may move a value across a bf16 rounding boundary: one ulp, rarely
    differ = dz != ref_g
    assert int(differ.sum()) <= n * c // 500
    torch.testing.assert_close(dz.float(), ref_g.float(), rtol=2 ** -7, atol=1e-9)
    torch.testing.assert_close(db, dz.float().sum(0), rtol=1e-5, atol=1e-7)


def test_softmax_xent_non_finite_logit_makes_the_loss_nan():
    z = torch.randn(4, 10).to(torch.bfloat16)
    y = torch.tensor([0, 1, 2, 3])
    for bad in (float("nan"), float("inf")):
        z[2, 5] = bad
        total, _ = K.softmax_xent(_bits(z), y.numpy(), 0.25, _bits(torch.empty_like(z)), np.empty(10, np.float32))
        assert not np.isfinite(total)


def _pair(loss_overrides: list[str]):
    """(fast stepper, autograd reference stepper) of the same small model and batch."""
    cfg = load_train_config(None, ["precision=bf16", "optim.grad_clip=0.05", *loss_overrides])
    mc = ModelConfig(left_context=2, right_context=2, feat_dim=8, num_layers=3, hidden_dim=96, num_classes=50)
    steppers = []
    for fast in (True, False):
        torch.manual_seed(1)
        model = build_model(mc)
        s = Stepper(model, model, make_optimizer(list(model.parameters()), cfg), cfg, torch.device("cpu"))
        assert s.fast is not None
        if not fast:
            s.fast = None
        steppers.append(s)
    return steppers


def _batch(n: int = 300, c: int = 50, soft: bool = False) -> Batch:
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(n, c) * 2, -1) if soft else None
    return Batch(x=torch.randn(n, 5, 8), labels=torch.randint(0, c, (n,)), utts=torch.zeros(n, dtype=torch.long),
                 frames=torch.zeros(n, dtype=torch.long), soft=None if probs is None else SoftTargets(probs))


def test_hard_labels_take_the_fused_loss_and_soft_targets_the_autograd_loss(monkeypatch):
    calls = {"ce": 0, "autograd": 0}
    for overrides, soft, key in ((["loss.soft_weight=0.0"], False, "ce"),
                                 (["loss.soft_weight=0.5", "loss.temperature=2.0"], True, "autograd")):
        fast, _ = _pair(overrides)
        for name, k in (("forward_backward_ce", "ce"), ("forward_backward", "autograd")):
            orig = getattr(fast.fast, name)

            def spy(*a, _orig=orig, _k=k, **kw):
                calls[_k] += 1
                return _orig(*a, **kw)
            monkeypatch.setattr(fast.fast, name, spy)
        before = dict(calls)
        assert fast.step(_batch(soft=soft), 1e-3).ok
        assert calls[key] == before[key] + 1 and sum(calls.values()) == sum(before.values()) + 1


def test_soft_target_step_matches_autocast_autograd_adam():
    fast, ref = _pair(["loss.soft_weight=0.5", "loss.temperature=2.0"])
    batch = _batch(soft=True)
    for _ in range(3):
        a, b = fast.step(batch, 1e-3), ref.step(batch, 1e-3)
        assert a.ok and b.ok
        assert a.loss == pytest.approx(b.loss, rel=2e-3)
        assert abs(a.correct - b.correct) <= 3
    for pa, pb in zip(fast.model.state_dict().values(), ref.model.state_dict().values()):
        assert float((pa - pb).abs().max()) < 1.5e-3
        assert float((pa - pb).abs().mean()) < 1e-4


def test_out_of_range_label_is_reported_as_by_the_reference_loss():
    fast, ref = _pair([])
    batch = _batch()
    batch.labels[5] = 50
    for s in (fast, ref):
        with pytest.raises((IndexError, RuntimeError)):
            s.step(batch, 1e-3)


def test_batches_of_different_sizes_reuse_or_remake_the_buffers():
    fast, ref = _pair([])
    for n in (300, 37, 300):
        batch = _batch(n)
        a, b = fast.step(batch, 1e-3), ref.step(batch, 1e-3)
        assert a.loss == pytest.approx(b.loss, rel=2e-3)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc only")
def test_malloc_thresholds_are_fixed_once_and_allocation_still_works():
    from asrkd.kernels.malloc_tuning import keep_freed_memory

    assert keep_freed_memory() and keep_freed_memory()
    a = torch.ones(3 << 20)  # 12 MB: from the heap now; freeing and reallocating keeps working
    del a
    assert float(torch.ones(3 << 20).sum()) == 3 << 20
