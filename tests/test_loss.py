"""Properties of the distillation loss (asrkd.train.loss)."""

from __future__ import annotations

import pytest
import torch

from asrkd.errors import AsrkdError
from asrkd.softtargets.formats import SoftTargets
from asrkd.train.loss import kd_loss, soft_kl
from asrkd.softtargets.formats import TargetFormat, encode_torch


def _teacher(M: int = 12, C: int = 30, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(M, C, generator=g) * scale


def _dense(z: torch.Tensor, T: float) -> SoftTargets:
    return SoftTargets(torch.softmax(z / T, -1))


def _topk(z: torch.Tensor, T: float, k: int) -> SoftTargets:
    a = encode_torch(torch.softmax(z / T, -1), TargetFormat("topk", z.shape[-1], k))
    return SoftTargets(a["probs"], a["ids"], a["tail"])


def _grad(z: torch.Tensor, labels, soft, alpha: float, T: float, mask=None) -> torch.Tensor:
    x = z.clone().requires_grad_(True)
    kd_loss(x, labels, soft, alpha, T, mask).total.backward()
    return x.grad


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
@pytest.mark.parametrize("kind", ["dense", "topk"])
def test_zero_gradient_when_student_equals_teacher(T: float, kind: str) -> None:
    z = _teacher()
    soft = _dense(z, T) if kind == "dense" else _topk(z, T, 5)
    g = _grad(z, None, soft, 1.0, T)
    assert g.abs().max() < 1e-6
    loss = kd_loss(z, None, soft, 1.0, T)
    assert abs(loss.soft.item()) < 1e-6
    # ... and the property is not vacuous: a different student gets a gradient.
    g2 = _grad(z + _teacher(seed=1), None, soft, 1.0, T)
    assert g2.abs().max() > 1e-3


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9, 1.0])
def test_gradient_matches_closed_form_with_T_squared(T: float, alpha: float) -> None:
    """d loss / dz = ((1-a) (softmax(z) - y) + a T^2 (softmax(z/T) - p) / T) / M."""
    z = _teacher(seed=3, scale=1.0)
    p = torch.softmax(_teacher(seed=4) / T, -1)
    y = torch.randint(0, z.shape[1], (z.shape[0],), generator=torch.Generator().manual_seed(5))
    g = _grad(z, y, SoftTargets(p), alpha, T)
    M = z.shape[0]
    onehot = torch.nn.functional.one_hot(y, z.shape[1]).float()
    expect = ((1 - alpha) * (torch.softmax(z, -1) - onehot) + alpha * T * (torch.softmax(z / T, -1) - p)) / M
    torch.testing.assert_close(g, expect, atol=1e-6, rtol=1e-4)


def test_T_squared_keeps_soft_gradient_magnitude_across_temperatures() -> None:
    """At high T the raw KL gradient shrinks as 1/T^2; multiplied by T^2 it stays put."""
    z = _teacher(seed=6, scale=1.0)
    z = z - z.mean(-1, keepdim=True)
    v = _teacher(seed=7, scale=1.0)
    v = v - v.mean(-1, keepdim=True)
    norms = []
    raw = []
    for T in (10.0, 20.0, 40.0):
        g = _grad(z, None, _dense(v, T), 1.0, T)
        norms.append(g.norm().item())
        x = z.clone().requires_grad_(True)
        soft_kl(x, _dense(v, T), T).mean().backward()
        raw.append(x.grad.norm().item())
    assert max(norms) / min(norms) < 1.05
    assert raw[0] / raw[2] > 10  # without T^2 the gradient would vanish with T


def test_topk_with_k_equal_C_is_the_dense_loss() -> None:
    z, s = _teacher(seed=8), _teacher(seed=9)
    T = 2.0
    dense = kd_loss(s, None, _dense(z, T), 1.0, T)
    full = kd_loss(s, None, _topk(z, T, z.shape[1]), 1.0, T)
    torch.testing.assert_close(full.total, dense.total)


def test_tail_is_a_lumped_bucket() -> None:
    """The loss is the KL on the partition {top-k classes, the rest}: it equals a hand-computed
    coarsened KL, ignores how the teacher's tail is spread, and gives the tail's classes the
    target t * q_c / Q_rest (the student keeps its own tail shape)."""
    T, k, C = 2.0, 4, 30
    z, s = _teacher(seed=10), _teacher(seed=11)
    soft = _topk(z, T, k)
    loss = kd_loss(s, None, soft, 1.0, T).soft
    q = torch.softmax(s / T, -1)
    p = torch.softmax(z / T, -1)
    top = torch.topk(p, k, -1).indices
    in_top = torch.zeros_like(p, dtype=torch.bool).scatter(-1, top, True)
    pk, qk = p[in_top].view(-1, k), q[in_top].view(-1, k)
    t, Q = p[~in_top].view(-1, C - k).sum(-1), q[~in_top].view(-1, C - k).sum(-1)
    manual = ((pk * (pk / qk).log()).sum(-1) + t * (t / Q).log()).mean()
    torch.testing.assert_close(loss, manual, rtol=1e-5, atol=1e-6)

    # Another teacher with the same top-k and tail total but a different tail shape: same loss.
    p2 = p.clone()
    noise = torch.rand(p.shape, generator=torch.Generator().manual_seed(12)) * (~in_top)
    p2[~in_top] = 0
    p2 = p2 + noise / noise.sum(-1, keepdim=True) * t[:, None]
    enc = encode_torch(p2, TargetFormat("topk", C, k))
    assert torch.equal(enc["ids"].sort(-1).values, top.sort(-1).values)
    loss2 = kd_loss(s, None, SoftTargets(enc["probs"], enc["ids"], enc["tail"]), 1.0, T).soft
    torch.testing.assert_close(loss2, loss, rtol=1e-5, atol=1e-6)

    # Gradient w.r.t. tempered logits is q - target, target = t * q / Q_rest on the tail.
    g = _grad(s, None, soft, 1.0, T)
    target = torch.where(in_top, p, t[:, None] * q / Q[:, None])
    torch.testing.assert_close(g, T * (q - target) / z.shape[0], atol=1e-6, rtol=1e-4)
    # So a uniform-spread reading of the tail would give a different (wrong-shaped) gradient.
    uniform = torch.where(in_top, p, (t / (C - k))[:, None])
    assert (g - T * (q - uniform) / z.shape[0]).abs().max() > 1e-4


def test_fp16_targets_are_renormalised() -> None:
    z, s, T = _teacher(seed=13), _teacher(seed=14), 2.0
    soft = _topk(z, T, 5)
    half = SoftTargets(soft.probs.half(), soft.ids, soft.tail)
    scaled = SoftTargets(soft.probs * 1.01, soft.ids, soft.tail * 1.01)
    ref = kd_loss(s, None, soft, 1.0, T).soft
    torch.testing.assert_close(kd_loss(s, None, half, 1.0, T).soft, ref, rtol=2e-3, atol=1e-4)
    torch.testing.assert_close(kd_loss(s, None, scaled, 1.0, T).soft, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "topk"])
def test_masked_frames_contribute_nothing(kind: str) -> None:
    N, L, C, T = 3, 7, 30, 2.0
    z = _teacher(M=N * L, C=C, seed=15).view(N, L, C)
    s = _teacher(M=N * L, C=C, seed=16).view(N, L, C)
    soft = _dense(z, T) if kind == "dense" else _topk(z, T, 5)
    y = torch.randint(0, C, (N, L), generator=torch.Generator().manual_seed(17))
    mask = torch.ones(N, L, dtype=torch.bool)
    mask[0, 5:] = False
    mask[2, 2:] = False
    ref = kd_loss(s, y, soft, 0.5, T, mask)
    # Garbage in the padded frames (zeros, huge logits, invalid-looking targets) changes nothing.
    s2 = s.clone()
    s2[~mask] = 1e4
    probs2 = soft.probs.clone()
    probs2[~mask] = 0
    tail2 = None if soft.tail is None else soft.tail.masked_fill(~mask, 0)
    y2 = y.masked_fill(~mask, 0)
    out = kd_loss(s2, y2, SoftTargets(probs2, soft.ids, tail2), 0.5, T, mask)
    torch.testing.assert_close(out.total, ref.total)
    assert out.frames == int(mask.sum()) == ref.frames
    # Equal to the loss over the valid frames alone.
    sub = kd_loss(s[mask], y[mask], soft.select(mask), 0.5, T)
    torch.testing.assert_close(sub.total, ref.total)
    g = _grad(s2, y2, SoftTargets(probs2, soft.ids, tail2), 0.5, T, mask)
    assert torch.isfinite(g).all() and g[~mask].abs().max() == 0 and g[mask].abs().max() > 0


def test_frame_count_mismatch_raises() -> None:
    z, s, T = _teacher(M=10), _teacher(M=10, seed=1), 2.0
    y = torch.zeros(10, dtype=torch.long)
    short = _topk(z[:9], T, 5)
    with pytest.raises(AsrkdError, match="frame-count mismatch"):
        kd_loss(s, y, short, 0.5, T)
    with pytest.raises(AsrkdError, match="frame-count mismatch"):
        kd_loss(s, y, _dense(z[:9], T), 1.0, T)
    with pytest.raises(AsrkdError, match="labels"):
        kd_loss(s, y[:9], _dense(z, T), 0.5, T)
    with pytest.raises(AsrkdError, match="mask"):
        kd_loss(s, y, _dense(z, T), 0.5, T, torch.ones(11, dtype=torch.bool))
    with pytest.raises(AsrkdError, match="classes"):
        kd_loss(s, y, _dense(z[:, :20], T), 0.5, T)
    with pytest.raises(AsrkdError, match="no soft targets"):
        kd_loss(s, y, None, 0.5, T)


def test_hard_only_is_cross_entropy() -> None:
    s = _teacher(seed=18)
    y = torch.randint(0, s.shape[1], (s.shape[0],), generator=torch.Generator().manual_seed(19))
    out = kd_loss(s, y, None, 0.0, 2.0)
    torch.testing.assert_close(out.total, torch.nn.functional.cross_entropy(s, y))


def _topk_kl_by_autograd(z: torch.Tensor, soft: SoftTargets, T: float) -> torch.Tensor:
    """The documented top-k KL written out in autograd ops (the closed-form gradient's reference)."""
    logq = torch.log_softmax(z / T, -1)
    norm = soft.probs.sum(-1) + soft.tail
    p, tail = soft.probs / norm[:, None], soft.tail / norm
    kl = (torch.xlogy(p, p) - p * logq.gather(-1, soft.ids)).sum(-1)
    return kl + torch.xlogy(tail, tail) - tail * torch.logsumexp(logq.scatter(-1, soft.ids, float("-inf")), -1)


@pytest.mark.parametrize("peaked", [False, True])
def test_topk_kl_gradient_matches_autograd(peaked: bool) -> None:
    """The closed-form gradient of the top-k KL equals autograd's, also where the student's
    mass outside the teachers' top k underflows (``peaked``: rest logits 250 / T below)."""
    T, k = 2.0, 6
    z = _teacher(M=16, C=40, seed=3)
    soft = _topk(_teacher(M=16, C=40, seed=4), T, k)
    if peaked:
        z = torch.full_like(z, -200.0).scatter(-1, soft.ids, 50.0) + 0.01 * z
    w = torch.randn(16, generator=torch.Generator().manual_seed(5))
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ka, kb = soft_kl(a, soft, T), _topk_kl_by_autograd(b, soft, T)
    (ka * w).sum().backward()
    (kb * w).sum().backward()
    assert torch.isfinite(ka).all() and torch.isfinite(a.grad).all()
    torch.testing.assert_close(ka, kb, rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
@pytest.mark.parametrize("peaked", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_fused_loss_equals_autograd_reference(T: float, alpha: float, peaked: bool) -> None:
    """kd_loss on hard labels and top-k targets (one fused function that writes its gradient in
    the forward pass) gives autograd's value and gradient of (1-a) CE + a T^2 KL, also where
    the label's probability, the top-k classes' and the rest mass underflow in float32."""
    M, C, k = 16, 40, 6
    z = _teacher(M=M, C=C, seed=3)
    soft = _topk(_teacher(M=M, C=C, seed=4), T, k)
    y = torch.randint(0, C, (M,), generator=torch.Generator().manual_seed(6))
    if peaked:  # a third of the rows: one class 300 nats above the rest; a third: 101 nats
        # (float32's exp underflows into denormals there, where exp(-101 / T) does not)
        for start, gap in ((0, 300.0), (1, 101.0)):
            z[start::3] = -gap + 0.01 * z[start::3]
            z[start::3, 0] = 0.0
    a, b = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    out = kd_loss(a, y, soft, alpha, T)
    ref_hard = torch.nn.functional.cross_entropy(b, y)
    ref_soft = _topk_kl_by_autograd(b, soft, T).mean()
    ref = (1 - alpha) * ref_hard + alpha * T * T * ref_soft
    (3.0 * out.total).backward()
    (3.0 * ref).backward()
    assert torch.isfinite(a.grad).all()
    torch.testing.assert_close(out.total.detach(), ref.detach(), rtol=1e-4, atol=1e-5)
    if alpha < 1:
        torch.testing.assert_close(out.hard, ref_hard.detach(), rtol=1e-4, atol=1e-5)
    if alpha > 0:
        torch.testing.assert_close(out.soft, ref_soft.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_fused_loss_rejects_out_of_range_labels() -> None:
    s, z = _teacher(seed=20), _teacher(seed=21)
    y = torch.zeros(s.shape[0], dtype=torch.long)
    y[3] = s.shape[1]
    with pytest.raises(AsrkdError, match="hard labels span"):
        kd_loss(s, y, _topk(z, 2.0, 5), 0.5, 2.0)
    with pytest.raises(AsrkdError, match="hard labels span"):
        kd_loss(s, y - 1, None, 0.0, 2.0)
