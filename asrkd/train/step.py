"""One optimisation step (forward, loss, backward, clip, update): the compute core.

Kept apart from the loop so the benchmark (tools/bench_train.py) times exactly the code that
trains. Mixed precision: fp32 master weights, bf16 (CPU) / fp16 or bf16 (GPU) autocast.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch

from asrkd.inference.device import autocast, resolve_precision
from asrkd.train.config import TrainConfig
from asrkd.kernels import fast_dnn
from asrkd.kernels.malloc_tuning import keep_freed_memory
from asrkd.train.data import Batch
from asrkd.train.loss import training_loss


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    o = cfg.optim
    # Fused kernels (CPU and GPU): one pass over each parameter per step.
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                                weight_decay=o.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, fused=True)


@dataclass
class StepResult:
    ok: bool  # False: the loss or gradient was non-finite and the update was skipped
    loss: float  # batch mean loss
    correct: int  # frames whose argmax logit is the hard label


class Stepper:
    """Performs training steps of ``net`` (``model`` or its DDP wrapper) with ``optimizer``.

    ``distributed``: the finite check then uses only the (all-reduced, identical) gradient norm,
    so every rank makes the same skip decision.
    """

    def __init__(self, net: torch.nn.Module, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 cfg: TrainConfig, device: torch.device, distributed: bool = False):
        self.net, self.model, self.optimizer, self.cfg = net, model, optimizer, cfg
        keep_freed_memory()  # activations, logits and the loss's (N, C) buffers are reallocated every step
        precision = resolve_precision(cfg.precision, device)
        self.autocast = functools.partial(autocast, precision, device)
        self.distributed = distributed
        # fp16 gradients underflow without loss scaling; bf16 and fp32 need none.
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf
        # A DNN with Adam in bf16 on CPU trains with the hand-fused step (same arithmetic, fewer
        # passes over memory) unless fast_step=off; everything else (GPU, fp16/fp32, DDP, SGD)
        # with autograd.
        self.fast = (fast_dnn.FastDnnStep(model, optimizer)  # type: ignore[arg-type]
                     if cfg.fast_step == "auto"
                     and fast_dnn.supports(model, optimizer, device, precision, distributed)
                     else None)

    @property
    def path(self) -> str:
        """Which step runs: "fused-bf16" (:class:`~asrkd.kernels.fast_dnn.FastDnnStep`) or "autograd"."""
        return "fused-bf16" if self.fast is not None else "autograd"

    @property
    def gemm(self) -> str:
        """The fused step's GEMM: "amx" (the AMX kernel takes some of the model's matmuls, oneDNN
        the rest) or "onednn"; "n/a" for autograd (torch picks its own)."""
        return self.fast.gemm() if self.fast is not None else "n/a"

    def step(self, batch: Batch, lr: float) -> StepResult:
        if self.fast is not None:
            return self._fast_step(batch, lr)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        with self.autocast():
            logits = self.net(batch.x)
        loss = training_loss(logits.float(), batch, self.cfg.loss)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            return self._scaled_step(loss.total, logits, batch)
        loss.total.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = float(torch.nn.utils.get_total_norm(grads, foreach=True))
        ok = math.isfinite(norm)
        if not self.distributed:  # a rank-local loss check would let DDP ranks disagree
            ok = ok and bool(torch.isfinite(loss.total))
        if ok:
            # Gradient clipping folded into the fused optimiser kernel: it divides the gradients
            # by ``grad_scale`` (the hook AMP's GradScaler uses), saving a pass over them.
            scale = (norm + 1e-6) / self.max_norm
            self.optimizer.grad_scale = torch.tensor(scale) if scale > 1.0 else None  # type: ignore[attr-defined]
            self.optimizer.step()
        correct = int((logits.detach().argmax(-1) == batch.labels).sum())
        return StepResult(ok, float(loss.total.detach()), correct)

    def _fast_step(self, batch: Batch, lr: float) -> StepResult:
        """The :class:`~asrkd.kernels.fast_dnn.FastDnnStep` path: same checks and clipping."""
        assert self.fast is not None
        if self._plain_ce(batch):
            loss, correct, norm = self.fast.forward_backward_ce(batch.x, batch.labels)
        else:
            loss_t, _, logits, norm = self.fast.forward_backward(
                batch.x, lambda z: (training_loss(z, batch, self.cfg.loss).total, None))
            loss, correct = float(loss_t.detach()), int((logits.argmax(-1) == batch.labels).sum())
        ok = math.isfinite(norm) and math.isfinite(loss)
        if ok:
            scale = (norm + 1e-6) / self.max_norm
            self.fast.update(lr, scale if scale > 1.0 else 1.0)
        return StepResult(ok, loss, correct)

    def _plain_ce(self, batch: Batch) -> bool:
        """Whether the loss is plain hard-label cross-entropy (soft-target weight 0) on valid
        labels: the fast step then computes it in one fused kernel on the bf16 logits (anything
        else, e.g. an out-of-range label, goes through ``training_loss``, which reports it)."""
        if self.cfg.loss.soft_weight != 0.0 or batch.labels.dim() != 1 or batch.labels.is_floating_point():
            return False
        y = batch.labels
        return y.numel() > 0 and int(y.min()) >= 0 and int(y.max()) < self.model.cfg.num_classes

    def _scaled_step(self, loss: torch.Tensor, logits: torch.Tensor, batch: Batch) -> StepResult:
        """fp16 AMP: scaled backward, unscale, clip, and the scaler's skip of overflowed steps."""
        assert self.scaler is not None
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.max_norm, foreach=True))
        scale_before = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        # An overflow at a high scale is routine (the scaler lowers it); only a non-finite loss
        # or an overflow at scale <= 1 counts as a non-finite step.
        ok = math.isfinite(norm) or scale_before > 1.0
        ok = ok and (self.distributed or bool(torch.isfinite(loss)))
        correct = int((logits.detach().argmax(-1) == batch.labels).sum())
        return StepResult(ok, float(loss.detach()), correct)

    def state_dict(self) -> dict[str, Any]:
        """Training state beyond model and optimiser (the fp16 loss scale), for checkpoints."""
        return {"scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
