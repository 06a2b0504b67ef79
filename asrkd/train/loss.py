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


def soft_kl(logits: torch.Tensor, soft: SoftTargets, T: float) -> torch.Tensor:
    """Per-frame KL(p_T || softmax(logits / T)), tail lumped as documented above.

    logits: (M, C) (valid frames only); soft: rows (M, ...). Returns (M,) float32.
    """
    p = soft.probs.float()
    if soft.is_dense:
        logq = torch.log_softmax(logits.float() / T, dim=-1)  # (M, C)
        p = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
        return (torch.xlogy(p, p) - p * logq).sum(-1)
    ids = soft.ids.long()
    tail = soft.tail.float().clamp_min(0.0)
    norm = (p.sum(-1) + tail).clamp_min(1e-30)
    p = p / norm[:, None]
    tail = tail / norm
    if ids.shape[-1] == logits.shape[-1]:
        logq = torch.log_softmax(logits.float() / T, dim=-1)
        return (torch.xlogy(p, p) - p * logq.gather(-1, ids)).sum(-1)
    return _TopkKL.apply(logits, p, ids, tail, T)


class _TopkKL(torch.autograd.Function):
    """The top-k KL above with its gradient in closed form: autograd through log_softmax,
    scatter and logsumexp makes about ten passes over the (M, C) logits, which at 2,000 classes
    cost a small model 40% of its step (tools/scale_rehearsal.py); this makes four (softmax,
    the masked sum of the rest, the scaled copy and the top-k scatter).

    d KL / d z = (q - target) / T with q = softmax(z / T), target = p_j on the top k and
    ``t * q_c / Q_rest`` on the rest (module docstring). ``logits (M, C)``, ``p (M, k)``
    normalised with ``t (M,)``, ``ids (M, k)``; returns the per-frame KL ``(M,)``."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, p: torch.Tensor, ids: torch.Tensor, tail: torch.Tensor,
                T: float) -> torch.Tensor:
        q = torch.softmax(logits.detach().float() / T, dim=-1)
        q_top = q.gather(-1, ids).log_()  # log q of the top-k classes
        small = q_top < -80.0  # near float32's underflow: the log from the logits instead
        if bool(small.any()):
            rows = small.any(-1)
            z = logits.detach().float()[rows] / T
            q_top[rows] = z.gather(-1, ids[rows]) - torch.logsumexp(z, -1, keepdim=True)
        rest = q.scatter(-1, ids, 0.0).sum(-1)  # Q_rest, summed over the other classes (no cancellation)
        log_rest = rest.log()
        # Where that sum underflows, Q_rest's log and the tail's shape over the rest classes come
        # from the logits themselves (rare: a student far more peaked than its teachers).
        tiny = rest < 1e-30
        within = None
        if bool(tiny.any()):
            z = logits.detach().float()[tiny] / T
            zr = z.scatter(-1, ids[tiny], float("-inf"))
            log_rest[tiny] = torch.logsumexp(zr, -1) - torch.logsumexp(z, -1)
            within = torch.softmax(zr, -1)  # (tiny rows, C): the student's shape inside the rest
        kl = (torch.xlogy(p, p) - p * q_top).sum(-1) + torch.xlogy(tail, tail) - tail * log_rest
        ctx.save_for_backward(q, p, ids, tail, rest, tiny, within)
        ctx.T, ctx.dtype = T, logits.dtype
        return kl

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        q, p, ids, tail, rest, tiny, within = ctx.saved_tensors
        g = grad.float() / ctx.T
        # Rest classes: q_c - t q_c / Q_rest; top-k classes: q_j - p_j.
        scale = torch.where(tiny, 1.0, 1.0 - tail / rest.clamp_min(1e-30))
        q_ids = q.gather(-1, ids)
        dz = q.mul_((scale * g)[:, None])
        if within is not None:
            dz[tiny] -= (tail[tiny] * g[tiny])[:, None] * within
        dz.scatter_(-1, ids, (q_ids - p) * g[:, None])
        return dz.to(ctx.dtype), None, None, None, None


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
    zero = flat.sum() * 0.0  # keeps the graph (and device/dtype) when a term is off or empty
    if frames == 0:
        return KDLoss(zero, zero.detach(), zero.detach(), 0)
    hard = zero
    if alpha < 1:
        y = labels.reshape(-1)
        if keep is not None:
            y = y[keep]
        hard = F.cross_entropy(flat.float(), y.long())
    softv = zero
    if alpha > 0:
        st = SoftTargets(
            soft.probs.reshape(-1, soft.probs.shape[-1]),
            None if soft.ids is None else soft.ids.reshape(-1, soft.ids.shape[-1]),
            None if soft.tail is None else soft.tail.reshape(-1),
        )
        if keep is not None:
            st = st.select(keep)
        softv = soft_kl(flat, st, T).mean()
    total = (1.0 - alpha) * hard + alpha * T * T * softv
    return KDLoss(total, hard.detach(), softv.detach(), frames)


def training_loss(logits: torch.Tensor, batch: Batch, cfg: LossConfig) -> KDLoss:
    """``logits: (N, C)`` of ``batch`` -> the loss (``.total`` to backpropagate)."""
    return kd_loss(logits, batch.labels, batch.soft, cfg.soft_weight, cfg.temperature)
