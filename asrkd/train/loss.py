"""The training objective (Hinton, Vinyals & Dean 2015, section 2), separate from model and loop::

    loss = (1 - a) * CE(hard labels, softmax(z))  +  a * T^2 * KL(p_T || softmax(z / T))

averaged over the valid (unmasked) frames. ``p_T`` is the teachers' combined distribution at
temperature T. The soft term is written as a KL divergence: it differs from the cross-entropy
by the teachers' entropy, a constant, so the gradient is the same, and its value is 0 exactly
when the student matches the teachers (easier to read in logs). ``T^2`` keeps the soft
gradient's magnitude independent of T (its gradient w.r.t. the logits scales as 1/T^2).
``a = 0`` is a plain hard-label model (a teacher); ``a = 0.5`` is the paper's weighting.

Top-k targets and the tail mass (the explicit choice, DESIGN.md "soft-target cache"):
a top-k frame stores the k largest teacher probabilities and the leftover tail mass ``t``, not
how ``t`` is spread over the other C - k classes. We do not invent a shape for it: the tail is a
lumped "other" bucket compared with the student's summed probability over the same non-top-k
classes, i.e. the KL between the two distributions coarsened onto the partition
{each top-k class, the rest}::

    KL = sum_{j in top-k} p_j log(p_j / q_j)  +  t log(t / Q_rest),   Q_rest = sum_{c not in top-k} q_c

Why: (1) probability mass is conserved (the student is not pushed to give the tail away);
(2) it assumes nothing the cache does not know - spreading ``t`` uniformly instead would pull
the student towards a flat tail, raising the classes the teachers consider least likely, which
is wrong for peaked acoustic posteriors; (3) the gradient w.r.t. the tempered logits is
``q_c - target_c`` with ``target_c = p_j`` on the top-k and ``t * q_c / Q_rest`` on the rest,
so the student keeps its own shape inside the tail and only its total is matched; (4) with
``t = 0`` or ``k = C`` it is exactly the dense loss. Stored fp16 probabilities do not sum to
exactly 1 with the tail, so each frame's target is renormalised (sum of p + t) first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from asrkd.errors import AsrkdError
from asrkd.softtargets.formats import SoftTargets
from asrkd.train.config import LossConfig
from asrkd.train.data import Batch


@dataclass
class KDLoss:
    """total: what to backpropagate; hard/soft: the unweighted terms (soft = KL at T, without
    T^2), for logging; frames: number of valid frames averaged over."""

    total: torch.Tensor
    hard: torch.Tensor
    soft: torch.Tensor
    frames: int


def _check_shapes(logits: torch.Tensor, labels: torch.Tensor | None, soft: SoftTargets | None,
                  mask: torch.Tensor | None) -> None:
    lead = tuple(logits.shape[:-1])
    if labels is not None and tuple(labels.shape) != lead:
        raise AsrkdError(f"kd loss: labels {tuple(labels.shape)} do not match logits frames {lead}")
    if mask is not None and tuple(mask.shape) != lead:
        raise AsrkdError(f"kd loss: mask {tuple(mask.shape)} does not match logits frames {lead}")
    if soft is None:
        return
    if tuple(soft.probs.shape[:-1]) != lead:
        raise AsrkdError(
            f"kd loss: soft targets cover frames {tuple(soft.probs.shape[:-1])}, logits {lead} "
            "(frame-count mismatch between the soft-target source and the batch)"
        )
    C = logits.shape[-1]
    if soft.is_dense:
        if soft.probs.shape[-1] != C:
            raise AsrkdError(f"kd loss: dense soft targets have {soft.probs.shape[-1]} classes, logits {C}")
    else:
        if soft.ids is None or soft.tail is None or soft.ids.shape != soft.probs.shape:
            raise AsrkdError("kd loss: top-k soft targets need ids (..., K) and tail (...,)")
        if tuple(soft.tail.shape) != lead:
            raise AsrkdError(f"kd loss: tail {tuple(soft.tail.shape)} does not match logits frames {lead}")
        if soft.probs.shape[-1] > C:
            raise AsrkdError(f"kd loss: k={soft.probs.shape[-1]} > {C} classes")


def _normalised_topk(soft: SoftTargets) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k targets as float32 ``p (M, k)``, int64 ``ids (M, k)`` and ``tail (M,)``, each frame
    renormalised to sum(p) + tail = 1 (stored fp16 probabilities do not sum exactly to 1)."""
    p = soft.probs.float()
    tail = soft.tail.float().clamp_min(0.0)
    norm = (p.sum(-1) + tail).clamp_min(1e-30)
    return p / norm[:, None], soft.ids.long(), tail / norm


def _check_labels(y: torch.Tensor | None, C: int) -> None:
    """Hard labels must be class ids in [0, C) (the fused loss indexes with them)."""
    if y is None or y.numel() == 0:
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= C:
        raise AsrkdError(f"kd loss: hard labels span [{lo}, {hi}], outside the {C} classes")


def soft_kl(logits: torch.Tensor, soft: SoftTargets, T: float) -> torch.Tensor:
    """Per-frame KL(p_T || softmax(logits / T)), tail lumped as documented above.

    logits: (M, C) (valid frames only); soft: rows (M, ...). Returns (M,) float32.
    """
    p = soft.probs.float()
    if soft.is_dense:
        logq = torch.log_softmax(logits.float() / T, dim=-1)  # (M, C)
        p = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
        return (torch.xlogy(p, p) - p * logq).sum(-1)
    p, ids, tail = _normalised_topk(soft)
    if ids.shape[-1] == logits.shape[-1]:
        logq = torch.log_softmax(logits.float() / T, dim=-1)
        return (torch.xlogy(p, p) - p * logq.gather(-1, ids)).sum(-1)
    return _TopkKL.apply(logits, p, ids, tail, T)


def _tempered(z: torch.Tensor, T: float, p1: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(z / T) as ``u / s[:, None]``: a new float32 ``u (M, C)`` and its row sums ``s (M,)``
    (the division is left to the callers, which fold it into a per-row factor). From the
    untempered softmax ``p1`` when the caller has it and T is 1 or 2 (a copy, or a square root
    and a sum, where a fresh softmax costs an exp per logit, the dearest pass at 2,000 classes).
    ``p1``'s float32 underflow (below e^-103) then zeroes classes under ~1e-22 at T = 2, which
    :func:`_topk_terms` allows for."""
    if p1 is not None and T == 2.0:
        u = p1.sqrt()
        return u, u.sum(-1)
    u = p1.clone() if p1 is not None and T == 1.0 else torch.softmax(z / T, dim=-1)
    return u, u.new_ones(u.shape[0])


# Below these the tempered probabilities derived from p1 (_tempered) may have lost classes to
# float32 underflow, so the affected rows are recomputed from the logits.
_EXACT_BELOW_LOG = -23.0  # log q of a top-k class (~1e-10)
_EXACT_BELOW = 1e-10  # Q_rest


@dataclass
class _TopkTerms:
    """The top-k KL's per-frame value and what its gradient needs (module docstring): ``kl (M,)``;
    ``q_ids (M, k)`` the student's tempered probabilities on the top-k ids; ``rest_factor (M,)``
    = (1 - t / Q_rest) / s, the factor of ``u`` on the rest classes; ``tiny (M,)`` rows whose
    Q_rest is tiny, with ``within (tiny rows, C)`` the student's shape inside the rest (None when
    no row is tiny)."""

    kl: torch.Tensor
    q_ids: torch.Tensor
    rest_factor: torch.Tensor
    tiny: torch.Tensor
    within: torch.Tensor | None


def _topk_terms(u: torch.Tensor, s: torch.Tensor, z: torch.Tensor, p: torch.Tensor,
                ids: torch.Tensor, tail: torch.Tensor, T: float) -> _TopkTerms:
    """``u / s[:, None] = softmax(z / T)`` (:func:`_tempered`), ``u`` zeroed at ``ids`` in place
    (the gradient writes those entries itself); ``z (M, C)`` the float32 logits; ``p (M, k)``
    normalised with ``tail (M,)``."""
    q_ids = u.gather(-1, ids).div_(s[:, None])
    log_top = q_ids.log()
    small = log_top < _EXACT_BELOW_LOG  # underflow-prone: the log from the logits instead
    if bool(small.any()):
        rows = small.any(-1)
        zr = z[rows] / T
        log_top[rows] = zr.gather(-1, ids[rows]) - torch.logsumexp(zr, -1, keepdim=True)
    rest = u.scatter_(-1, ids, 0.0).sum(-1) / s  # Q_rest, summed over the other classes (no cancellation)
    log_rest = rest.log()
    # Where that sum is tiny, Q_rest's log and the tail's shape over the rest classes come from
    # the logits themselves (rare: a student far more peaked than its teachers).
    tiny = rest < _EXACT_BELOW
    within = None
    if bool(tiny.any()):
        zt = z[tiny] / T
        zr = zt.scatter(-1, ids[tiny], float("-inf"))
        log_rest[tiny] = torch.logsumexp(zr, -1) - torch.logsumexp(zt, -1)
        within = torch.softmax(zr, -1)
    kl = (torch.xlogy(p, p) - p * log_top).sum(-1) + torch.xlogy(tail, tail) - tail * log_rest
    rest_factor = torch.where(tiny, 1.0, 1.0 - tail / rest.clamp_min(1e-30)) / s
    return _TopkTerms(kl, q_ids, rest_factor, tiny, within)


def _topk_grad_(u: torch.Tensor, terms: _TopkTerms, p: torch.Tensor, ids: torch.Tensor,
                tail: torch.Tensor, w: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
    """The top-k KL's gradient w.r.t. the tempered logits, weighted per frame by ``w (M,)``:
    ``w (q - target)`` with ``q_c - t q_c / Q_rest`` on the rest classes and ``q_j - p_j`` on the
    top k. Written into ``u`` (as :func:`_topk_terms` left it), or added to ``base (M, C)`` in
    one pass when given; returns the tensor written."""
    r = (terms.rest_factor * w)[:, None]
    dz = u.mul_(r) if base is None else base.addcmul_(u, r)
    if terms.within is not None:
        dz[terms.tiny] -= (tail[terms.tiny] * w[terms.tiny])[:, None] * terms.within
    return dz.scatter_add_(-1, ids, (terms.q_ids - p) * w[:, None])  # u is 0 there


class _TopkKL(torch.autograd.Function):
    """The per-frame top-k KL (:func:`soft_kl`) with its gradient in closed form: autograd
    through log_softmax, scatter and logsumexp makes about ten passes over the (M, C) logits.
    d KL / d z = (q - target) / T. ``logits (M, C)``, ``p (M, k)`` normalised with ``t (M,)``,
    ``ids (M, k)``; returns the per-frame KL ``(M,)``."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, p: torch.Tensor, ids: torch.Tensor, tail: torch.Tensor,
                T: float) -> torch.Tensor:
        z = logits.detach().float()
        u, s = _tempered(z, T, None)
        terms = _topk_terms(u, s, z, p, ids, tail, T)
        ctx.save_for_backward(u, p, ids, tail)
        ctx.terms, ctx.T, ctx.dtype = terms, T, logits.dtype
        return terms.kl

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        u, p, ids, tail = ctx.saved_tensors
        dz = _topk_grad_(u, ctx.terms, p, ids, tail, grad.float() / ctx.T)
        return dz.to(ctx.dtype), None, None, None, None


class _FusedKD(torch.autograd.Function):
    """The whole loss of :func:`kd_loss` for hard labels and/or top-k targets (k < C) in one
    function that writes its gradient during the forward pass: one softmax of the logits serves
    the cross-entropy, the tempered softmax (T = 1, 2) and the gradient buffer, where autograd
    would allocate and page in half a dozen (M, C) tensors per step (at 2,000 classes those,
    not the arithmetic, made a small student's step 10-20% slower than a hard-label one).

    ``logits (M, C)``; ``labels (M,)`` or None when a = 1; ``p (M, k)``, ``ids (M, k)``,
    ``tail (M,)`` normalised top-k targets or None when a = 0. Returns ``total`` (the
    differentiable scalar) and the detached means ``hard`` (CE) and ``soft`` (KL at T)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor | None, p: torch.Tensor | None,
                ids: torch.Tensor | None, tail: torch.Tensor | None, alpha: float, T: float):
        z = logits.detach().float()
        M = z.shape[0]
        hard, soft = z.new_zeros(()), z.new_zeros(())
        p1 = torch.softmax(z, -1) if labels is not None or T in (1.0, 2.0) else None
        # The gradient is kept as ``factor * grad``; the factor is applied in backward, which
        # scales it anyway, saving a pass. Hard part: (1 - a) (p1 - onehot) / M. Soft part:
        # a T^2 (the weight) x 1/T (the tempered logits' chain rule) / M (the mean) x (q - target).
        w_hard, w_soft = (1.0 - alpha) / M, alpha * T / M
        factor = w_hard if labels is not None else w_soft
        grad = None
        if labels is not None:
            y = labels.long()
            rows = torch.arange(M, device=z.device)
            py = p1[rows, y]
            ce = -py.log()
            low = py < 1e-30  # the label's probability underflows: CE from the logits
            if bool(low.any()):
                ce[low] = torch.logsumexp(z[low], -1) - z[low, y[low]]
            hard = ce.mean()
        if p is not None:
            u, s = _tempered(z, T, p1)
            terms = _topk_terms(u, s, z, p, ids, tail, T)
            soft = terms.kl.mean()
            w = z.new_full((M,), w_soft / factor)
            grad = _topk_grad_(u, terms, p, ids, tail, w, p1 if labels is not None else None)
        if labels is not None:
            grad = p1  # (p1 plus the soft part, when there is one)
            grad.index_put_((rows, y), grad.new_full((M,), -1.0), accumulate=True)
        ctx.save_for_backward(grad)
        ctx.dtype, ctx.factor, ctx.spent = logits.dtype, factor, False
        ctx.mark_non_differentiable(hard, soft)
        return (1.0 - alpha) * hard + alpha * T * T * soft, hard, soft

    @staticmethod
    def backward(ctx, g_total: torch.Tensor, _g_hard: torch.Tensor, _g_soft: torch.Tensor):  # type: ignore[override]
        # The saved gradient is scaled in place (no new (M, C) buffer), so it serves one backward.
        if ctx.spent:
            raise AsrkdError("kd loss: backward through the fused loss twice (retain_graph is not supported)")
        ctx.spent = True
        (grad,) = ctx.saved_tensors
        return grad.mul_(g_total * ctx.factor).to(ctx.dtype), None, None, None, None, None, None


def kd_loss(
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    soft: SoftTargets | None,
    alpha: float,
    T: float,
    mask: torch.Tensor | None = None,
) -> KDLoss:
    """The distillation loss, mean over valid frames.

    logits: (..., C) student logits; labels: (...,) int64 hard labels (may be None when
    alpha == 1); soft: targets over the same frames (None when alpha == 0); mask: (...,) bool,
    True = the frame counts (padding and frames without labels are False). Raises AsrkdError
    when the frames of labels / soft targets / mask do not match the logits.
    """
    if not 0.0 <= alpha <= 1.0:
        raise AsrkdError(f"kd loss: soft-target weight a={alpha} must be in [0, 1]")
    if T <= 0:
        raise AsrkdError(f"kd loss: temperature must be > 0, got {T}")
    if alpha > 0 and soft is None:
        raise AsrkdError("kd loss: soft-target weight > 0 but no soft targets")
    if alpha < 1 and labels is None:
        raise AsrkdError("kd loss: hard-label weight > 0 but no labels")
    _check_shapes(logits, labels, soft if alpha > 0 else None, mask)
    C = logits.shape[-1]
    flat = logits.reshape(-1, C)
    keep = None if mask is None else mask.reshape(-1).bool()
    if keep is not None:
        flat = flat[keep]
    frames = flat.shape[0]
    if frames == 0:
        zero = flat.sum() * 0.0  # keeps the graph (and device/dtype)
        return KDLoss(zero, zero.detach(), zero.detach(), 0)
    y = None
    if alpha < 1:
        y = labels.reshape(-1)
        if keep is not None:
            y = y[keep]
    st = None
    if alpha > 0:
        st = SoftTargets(
            soft.probs.reshape(-1, soft.probs.shape[-1]),
            None if soft.ids is None else soft.ids.reshape(-1, soft.ids.shape[-1]),
            None if soft.tail is None else soft.tail.reshape(-1),
        )
        if keep is not None:
            st = st.select(keep)
    if st is None or (not st.is_dense and st.probs.shape[-1] < C):
        # Hard labels and/or top-k targets: the fused loss (its gradient computed in the forward).
        _check_labels(y, C)
        p, ids, tail = _normalised_topk(st) if st is not None else (None, None, None)
        total, hard, softv = _FusedKD.apply(flat, y, p, ids, tail, alpha, T)
        return KDLoss(total, hard, softv, frames)
    softv = soft_kl(flat, st, T).mean()
    hard = softv * 0.0 if y is None else F.cross_entropy(flat.float(), y.long())
    total = (1.0 - alpha) * hard + alpha * T * T * softv
    return KDLoss(total, hard.detach(), softv.detach(), frames)


def training_loss(logits: torch.Tensor, batch: Batch, cfg: LossConfig) -> KDLoss:
    """``logits: (N, C)`` of ``batch`` -> the loss (``.total`` to backpropagate)."""
    return kd_loss(logits, batch.labels, batch.soft, cfg.soft_weight, cfg.temperature)
