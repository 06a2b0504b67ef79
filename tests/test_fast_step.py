"""The hand-fused bf16 DNN step (asrkd.kernels.fast_dnn) against PyTorch: kernels exactly, the
step within bf16 tolerance of bf16 autocast + autograd + fused Adam."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from asrkd.models import ModelConfig, build_model
from asrkd.kernels import bf16_kernels as K
from asrkd.train.config import load_train_config
from asrkd.train.data import Batch
from asrkd.train.step import Stepper, make_optimizer

pytestmark = pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="no CPU bf16")


def _bits(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int16).numpy()


def test_relu_backward_kernel_matches_torch_bit_for_bit():
    g = torch.randn(130, 70).to(torch.bfloat16)  # not multiples of the tile size
    h = torch.randn(130, 70).relu().to(torch.bfloat16)
    h[0, :5] = -0.0
    dz, db, h_t = torch.empty_like(g), torch.empty(70), torch.empty(70, 130, dtype=torch.bfloat16)
    K.relu_backward_t(_bits(g), _bits(h), True, 1.0, _bits(dz), db.numpy(), _bits(h_t), True)
    ref = torch.ops.aten.threshold_backward(g, h, 0)
    assert torch.equal(dz, ref) and torch.equal(h_t, h.t())
    torch.testing.assert_close(db, ref.float().sum(0), rtol=1e-5, atol=1e-5)
    K.relu_backward_t(_bits(g), _bits(h), True, 2.0, _bits(dz), db.numpy(), _bits(h_t), False)
    assert torch.equal(dz, (ref.float() * 2).to(torch.bfloat16))


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_kernel_matches_torch_fused_adam_and_rounds_like_torch(weight_decay: float):
    p = torch.randn(1000) * 3
    p[:4] = torch.tensor([1.00390625, 1.01171875, float("inf"), 3e38])  # round-to-even ties, overflow
    g = torch.randn(1000).to(torch.bfloat16)
    m, v = torch.randn(1000) * 0.1, torch.rand(1000) * 0.01
    ref_p, ref_m, ref_v = p.clone(), m.clone(), v.clone()
    torch._fused_adam_([ref_p], [g.float()], [ref_m], [ref_v], [], [torch.tensor(3.0)], lr=1e-2, beta1=0.9,
                       beta2=0.99, weight_decay=weight_decay, eps=1e-8, amsgrad=False, maximize=False,
                       grad_scale=torch.tensor(2.0))
    lo = torch.empty(1000, dtype=torch.bfloat16)
    K.adam(p.numpy(), m.numpy(), v.numpy(), _bits(g), _bits(lo), 0.5, 0.9, 0.99, 1e-8, weight_decay,
           1e-2 / (1 - 0.9**3), (1 - 0.99**3) ** 0.5)
    for ours, ref in ((p, ref_p), (m, ref_m), (v, ref_v)):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
    ref_lo = p.to(torch.bfloat16)
    finite = ~ref_lo.isnan()  # NaN payloads may differ; NaN must stay NaN
    assert torch.equal(lo.view(torch.int16)[finite], ref_lo.view(torch.int16)[finite])
    assert torch.equal(lo.isnan(), ref_lo.isnan())


def _setup(grad_clip: float, dropout: float = 0.0, weight_decay: float = 0.0):
    cfg = load_train_config(None, ["precision=bf16", f"optim.grad_clip={grad_clip}",
                                   f"optim.weight_decay={weight_decay}"])
    mc = ModelConfig(left_context=2, right_context=2, feat_dim=8, num_layers=3, hidden_dim=96,
                     dropout=dropout, num_classes=50)
    torch.manual_seed(0)
    x, y = torch.randn(300, 5, 8), torch.randint(0, 50, (300,))
    batch = Batch(x=x, labels=y, utts=torch.zeros(300, dtype=torch.long), frames=torch.zeros(300, dtype=torch.long))
    steppers = []
    for fast_step, path in (("auto", "fused-bf16"), ("off", "autograd")):  # off: the autograd reference
        torch.manual_seed(1)
        model = build_model(mc)
        opt = make_optimizer(list(model.parameters()), cfg)
        s = Stepper(model, model, opt, dataclasses.replace(cfg, fast_step=fast_step), torch.device("cpu"))
        assert s.path == path
        steppers.append(s)
    return steppers, batch


@pytest.mark.parametrize("grad_clip,weight_decay", [(0.0, 0.0), (0.05, 0.01)])
def test_fast_step_matches_autocast_autograd_adam(grad_clip: float, weight_decay: float):
    (fast, ref), batch = _setup(grad_clip, weight_decay=weight_decay)
    assert fast.fast is not None
    for _ in range(3):
        a, b = fast.step(batch, 1e-3), ref.step(batch, 1e-3)
        assert a.ok and b.ok
        assert a.loss == pytest.approx(b.loss, rel=2e-3)
    for pa, pb in zip(fast.model.state_dict().values(), ref.model.state_dict().values()):
        # Adam moves each weight by ~lr per step whatever the gradient's size; bf16 rounding of
        # tiny gradients can flip a few directions, so compare against that scale.
        assert float((pa - pb).abs().max()) < 1.5e-3
        assert float((pa - pb).abs().mean()) < 1e-4
    sa, sb = fast.optimizer.state_dict(), ref.optimizer.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert float(sa["state"][k]["step"]) == float(sb["state"][k]["step"]) == 3.0
        torch.testing.assert_close(sa["state"][k]["exp_avg"], sb["state"][k]["exp_avg"], rtol=0.1, atol=1e-4)


def test_weights_loaded_from_outside_are_used_by_the_next_step():
    (fast, ref), batch = _setup(0.0)
    for _ in range(2):
        ref.step(batch, 1e-3)
    fast.model.load_state_dict(ref.model.state_dict())  # e.g. a resumed checkpoint
    fast.optimizer.load_state_dict(ref.optimizer.state_dict())
    a, b = fast.step(batch, 1e-3), ref.step(batch, 1e-3)
    assert a.loss == pytest.approx(b.loss, rel=1e-3)


def test_dropout_trains_and_is_deterministic_for_a_seed():
    losses = []
    for _ in range(2):
        (fast, _), batch = _setup(0.0, dropout=0.3)
        torch.manual_seed(5)
        losses.append([fast.step(batch, 3e-3).loss for _ in range(8)])
    assert losses[0] == losses[1]
    assert losses[0][-1] < losses[0][0]
