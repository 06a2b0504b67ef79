"""A hand-written bf16 training step for :class:`asrkd.models.dnn.DNN` with Adam on CPU.

Numerically the same step as bf16 autocast + autograd + fused Adam (bf16 matmuls, fp32 master
weights, moments and loss), but organised around what is slow on a CPU: outside the matmuls the
step is memory-bound, so every pass over a weight- or activation-sized array counts.

- The optimiser keeps a bf16 copy of every weight, written in the same pass as the fp32 Adam
  update (:func:`~asrkd.train.bf16_kernels.adam`): no fp32 -> bf16 cast per forward, no fp32
  gradient buffers, no separate clipping pass (clipping is a gradient scale inside Adam).
- oneDNN's matmul is slow when its left operand is transposed, and a weight gradient
  ``h^T @ dz`` contracts over the batch, so ``h`` must be transposed somewhere: the
  ReLU-backward kernel, which reads ``h`` anyway for the ReLU mask, writes ``h^T`` in the same
  pass (the weight gradient of the layer above is then computed one layer later). The same
  kernel applies the dropout scale and sums the bias gradient.
- The forward is oneDNN's linear with the bias and the ReLU fused.
The loss (hard labels and soft targets alike) stays an autograd function of fp32 logits.

Checkpoints are unaffected: the fp32 masters are the model's parameters and the moments live in
the ``torch.optim.Adam`` state in its usual layout, so runs resume across both step paths.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from asrkd.models.dnn import DNN
from asrkd.train import bf16_kernels as K


def _bits(t: torch.Tensor) -> Any:
    """A bf16 tensor's storage as an int16 numpy array (no copy)."""
    return t.view(torch.int16).numpy()


def supports(model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
             precision: str, distributed: bool) -> bool:
    """Whether :class:`FastDnnStep` can train this model (else the autograd path does)."""
    if distributed or device.type != "cpu" or precision != "bf16" or type(model) is not DNN:
        return False
    if not isinstance(optimizer, torch.optim.Adam) or len(optimizer.param_groups) != 1:
        return False
    g = optimizer.param_groups[0]
    if g.get("amsgrad") or g.get("maximize") or g.get("decoupled_weight_decay"):
        return False
    params = list(model.parameters())
    return (all(p.requires_grad and p.is_contiguous() and p.dtype == torch.float32 for p in params)
            and len(g["params"]) == len(params) and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class FastDnnStep:
    """Forward, backward and Adam update of a :class:`DNN` on CPU in bf16.

    ``loss_fn(logits: (N, C) fp32) -> (loss to backpropagate, anything)``.
    """

    def __init__(self, model: DNN, optimizer: torch.optim.Adam):
        self.model, self.optimizer = model, optimizer
        self.weights = list(model.weights)
        self.biases = list(model.biases)
        self.dropout = float(model.cfg.dropout)
        self._versions: list[int] = []
        self._sync_copies()

    def _sync_copies(self) -> None:
        """(Re)make the bf16 copies from the fp32 masters (at start, and after anything else
        wrote the masters, e.g. ``load_state_dict``: seen through the tensors' version counters)."""
        with torch.no_grad():
            self.w_lo = [w.to(torch.bfloat16) for w in self.weights]
            self.b_lo = [b.to(torch.bfloat16) for b in self.biases]
        self._versions = [p._version for p in self.weights + self.biases]

    def forward_backward(self, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], tuple[torch.Tensor, Any]]
                         ) -> tuple[torch.Tensor, Any, torch.Tensor, float]:
        """``x: (N, window, feat_dim)`` -> (loss, loss_fn's extra, fp32 logits (N, C), grad norm).

        Leaves the bf16 weight gradients and fp32 bias gradients for :meth:`update`.
        """
        if [p._version for p in self.weights + self.biases] != self._versions:
            self._sync_copies()
        cfg = self.model.cfg
        assert x.dim() == 3 and x.shape[1:] == (cfg.window, cfg.feat_dim), tuple(x.shape)
        last = len(self.weights) - 1
        keep = 1.0 - self.dropout
        dropout = self.dropout > 0 and self.model.training
        hs = [x.reshape(x.shape[0], -1).to(torch.bfloat16)]  # hs[i]: input of layer i; hs[-1]: logits
        with torch.no_grad():
            for i in range(last + 1):
                h = torch.ops.mkldnn._linear_pointwise(hs[-1], self.w_lo[i].t(), self.b_lo[i],
                                                       "relu" if i < last else "none", [], "")
                if i < last and dropout:
                    # dropped units become 0, so the backward's ReLU mask (h > 0) covers them too
                    h.mul_(torch.empty_like(h).bernoulli_(keep)).div_(keep)
                hs.append(h)
        logits = hs[-1].float().requires_grad_()
        loss, extra = loss_fn(logits)
        loss.backward()
        assert logits.grad is not None
        g = logits.grad.to(torch.bfloat16)  # gradient w.r.t. the current layer's output
        self.grad_w: list[torch.Tensor] = [torch.empty(0)] * (last + 1)
        self.grad_b: list[torch.Tensor] = [torch.empty(0)] * (last + 1)
        sumsq = 0.0
        with torch.no_grad():
            dz_above = None  # dz of layer i + 1, whose weight gradient waits for hs[i + 1]^T
            for i in range(last, -1, -1):
                n, o = g.shape
                relu = i < last
                dz = torch.empty_like(g)
                db = torch.empty(o, dtype=torch.float32)
                h_t = torch.empty(o, n, dtype=torch.bfloat16) if relu else dz  # dz: unused placeholder
                K.relu_backward_t(_bits(g), _bits(hs[i + 1]), relu, 1.0 / keep if relu and dropout else 1.0,
                                  _bits(dz), db.numpy(), _bits(h_t), relu)
                self.grad_b[i] = db
                sumsq += float(db.double().square().sum())
                if dz_above is not None:
                    sumsq += self._weight_grad(i + 1, h_t, dz_above)
                if i > 0:
                    g = torch.mm(dz, self.w_lo[i].t())
                dz_above = dz
            x_t = torch.empty(hs[0].shape[1], hs[0].shape[0], dtype=torch.bfloat16)
            K.transpose(_bits(hs[0]), _bits(x_t))
            sumsq += self._weight_grad(0, x_t, dz_above)
        return loss, extra, logits.detach(), math.sqrt(sumsq)

    def _weight_grad(self, i: int, h_t: torch.Tensor, dz: torch.Tensor) -> float:
        """Layer i's weight gradient ``h^T @ dz`` (in, out) bf16; returns its sum of squares."""
        self.grad_w[i] = gw = torch.mm(h_t, dz)
        return float(K.sumsq_bf16(_bits(gw).reshape(-1)))

    def update(self, lr: float, grad_scale: float) -> None:
        """Adam step (as ``torch.optim.Adam(fused=True)``) with the gradients divided by
        ``grad_scale``; updates the masters, the Adam state and the bf16 copies."""
        grp = self.optimizer.param_groups[0]
        grp["lr"] = lr
        beta1, beta2 = grp["betas"]
        for p, g, lo, is_w in ([(w, g, lo, True) for w, g, lo in zip(self.weights, self.grad_w, self.w_lo)]
                               + [(b, g, lo, False) for b, g, lo in zip(self.biases, self.grad_b, self.b_lo)]):
            st = self.optimizer.state[p]
            if not st:  # the state torch's fused Adam creates (so checkpoints are interchangeable)
                st["step"] = torch.tensor(0.0, dtype=torch.float32)
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["step"] += 1
            step = float(st["step"])
            step_size = lr / (1 - beta1 ** step)
            bc2_sqrt = math.sqrt(1 - beta2 ** step)
            kernel, grad = (K.adam, _bits(g)) if is_w else (K.adam_f32, g.numpy())
            kernel(p.detach().view(-1).numpy(), st["exp_avg"].view(-1).numpy(), st["exp_avg_sq"].view(-1).numpy(),
                   grad.reshape(-1), _bits(lo).reshape(-1), 1.0 / grad_scale, beta1, beta2, grp["eps"],
                   grp["weight_decay"], step_size, bc2_sqrt)
        self._versions = [p._version for p in self.weights + self.biases]
