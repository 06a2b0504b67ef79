"""The paper's DNN: spliced context window -> N x (affine + ReLU + dropout) -> affine logits.

Weights are stored input-major, ``(in, out)``, so the forward matmul is ``x @ W`` with both
operands contiguous. Each layer is one autograd function (:class:`_Affine`) whose forward adds
the bias inside the matmul and applies the ReLU in place on its output, and whose backward takes the ReLU
mask from that output: fewer passes over the activations and fewer temporaries than the
``addmm``/``relu`` autograd graph, which matters on a memory-bound CPU (tools/bench_train.py).
Under autocast the fp32 master weights are cast to the autocast dtype once per forward and the
weight gradients are returned in fp32 for the optimiser.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from asrkd.models import ModelConfig


class _Affine(torch.autograd.Function):
    """``relu?(h @ w + b)``: h (N, in) compute dtype; w (in, out), b (out,) fp32 masters."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, relu: bool) -> torch.Tensor:
        wc = w.to(h.dtype)
        z = torch.addmm(b.to(h.dtype), h, wc)  # oneDNN adds the bias inside the matmul
        if relu:
            z.relu_()
        ctx.relu = relu
        ctx.save_for_backward(h, wc, z if relu else None)
        ctx.w_dtype = w.dtype
        return z

    @staticmethod
    def backward(ctx, dz: torch.Tensor):  # type: ignore[override]
        h, wc, z = ctx.saved_tensors
        if ctx.relu:
            dz = torch.ops.aten.threshold_backward(dz, z, 0)
        dz = dz.to(wc.dtype)
        dh = torch.mm(dz, wc.t()) if ctx.needs_input_grad[0] else None
        # oneDNN's bf16 matmul with a transposed left operand runs at under half its usual rate
        # here; an explicit transpose followed by a plain matmul is faster overall.
        dw = torch.mm(h.t().contiguous(), dz).to(ctx.w_dtype)
        # Reductions accumulate in fp32 internally; asking for an fp32 result instead would first
        # copy all of dz to fp32 (an activation-sized pass per layer).
        db = dz.sum(0).to(ctx.w_dtype)
        return dh, dw, db, None


class DNN(nn.Module):
    """``forward(x: (N, window, feat_dim)) -> logits (N, num_classes)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        dims = [cfg.window * cfg.feat_dim] + [cfg.hidden_dim] * cfg.num_layers + [cfg.num_classes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            w = torch.empty(a, b)
            # He initialisation keeps the activations' scale through a deep ReLU stack.
            nn.init.normal_(w, std=math.sqrt((2.0 if i < len(dims) - 2 else 1.0) / a))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(b)))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        assert x.dim() == 3 and x.shape[1:] == (cfg.window, cfg.feat_dim), (
            f"expected (N, {cfg.window}, {cfg.feat_dim}), got {tuple(x.shape)}"
        )
        h = x.reshape(x.shape[0], -1)
        if torch.is_autocast_enabled(h.device.type):
            h = h.to(torch.get_autocast_dtype(h.device.type))
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = _Affine.apply(h, w, b, i < last)
            if i < last:
                h = self.dropout(h)
        return h
