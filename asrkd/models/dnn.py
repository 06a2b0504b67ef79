"""The paper's DNN: spliced context window -> N x (affine + ReLU + dropout) -> affine logits.

Weights are stored input-major, ``(in, out)``, so the forward matmul is ``x @ W`` with both
operands contiguous (oneDNN's fastest bf16 layout here; see tools/bench_train.py). The bias is
added separately rather than through ``addmm``, whose bf16 path is markedly slower on this CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from asrkd.models import ModelConfig


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
            if i < len(dims) - 2:
                # He initialisation keeps activations' scale through a deep ReLU stack.
                nn.init.normal_(w, std=math.sqrt(2.0 / a))
            else:
                nn.init.normal_(w, std=math.sqrt(1.0 / a))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(b)))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        assert x.dim() == 3 and x.shape[1:] == (cfg.window, cfg.feat_dim), (
            f"expected (N, {cfg.window}, {cfg.feat_dim}), got {tuple(x.shape)}"
        )
        h = x.reshape(x.shape[0], -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.matmul(h, w)
            h = h + b.to(h.dtype)
            if i < last:
                h = self.dropout(torch.relu(h))
        return h
