"""A hand-written bf16 training step for :class:`asrkd.models.dnn.DNN` with Adam on CPU.

Numerically the same step as bf16 autocast + autograd + fused Adam (bf16 matmuls, fp32 master
weights, moments and loss), but organised around what is slow on a CPU: outside the matmuls the
step is memory-bound, so every pass over a weight- or activation-sized array counts.

- The optimiser keeps a bf16 copy of every weight, written in the same pass as the fp32 Adam
  update (:func:`~asrkd.kernels.bf16_kernels.adam`): no fp32 -> bf16 cast per forward, no fp32
  gradient buffers, no separate clipping pass (clipping is a gradient scale inside Adam).
- oneDNN's matmul is slow when its left operand is transposed (under half speed here), and a
  weight gradient ``h^T @ dz`` contracts over the batch, so ``h`` must be transposed somewhere:
  the ReLU-backward kernel, which reads ``h`` anyway for the ReLU mask, writes ``h^T`` in the
  same pass with 8 x 8 shuffle transposes (the weight gradient of the layer above is then
  computed one layer later). The same kernel applies the dropout scale and sums the bias
  gradient. Where the input gradient runs on the AMX GEMM, all of this happens in the GEMM's
  epilogue instead (:func:`~asrkd.kernels.amx_gemm.dgrad_relu_backward`, same values bit for bit):
  the gradient never goes through memory (hinton2015, ``tools/bench.py --only train``, alternating
  runs: ~5450-5760 -> ~5720-5960 frames/s).
- The forward is oneDNN's linear with the bias and the ReLU fused, except for the layers with
  2048 or more inputs on a CPU with AMX: there (and in their input gradient) a hand-written AMX
  GEMM with the bias and ReLU in its epilogue (:mod:`asrkd.kernels.amx_gemm`) is ~15 % faster in
  the step (``AMX_MIN_K``). It also takes the weight gradient of the 2000-class output layer,
  where oneDNN is slow (:func:`_use_amx_wgrad`); same values up to the order of the fp32 additions.
- Plain hard-label training (soft-target weight 0) computes the cross-entropy, its gradient, the
  last bias gradient and the argmax hits in one kernel on the bf16 logits
  (:func:`~asrkd.kernels.bf16_kernels.softmax_xent`); any other loss (soft targets) stays an
  autograd function of fp32 logits (:meth:`FastDnnStep.forward_backward`).
- The backward writes into buffers kept across steps (``torch.mm(out=)``), and glibc is told to
  keep freed memory (:mod:`asrkd.kernels.malloc_tuning`): re-faulting ~100 MB of activations
  every step cost ~5 % of the step.

Where the time goes (hinton2015, batch 2048, 2 threads, ``python tools/bench_train.py --threads
2``, ms per step of ~355): AMX forward of the 2560-wide layers ~92, their fused input gradient +
ReLU backward ~87, oneDNN's weight gradients of those layers ~77 (the AMX kernel was no faster
there), Adam ~39 (memory-bound: 30 bytes of traffic per parameter), the 2000-class layer ~30,
the 1040-input layer ~11, gradient sums of squares ~8, the rest ~10. oneDNN runs the 2560-wide
shapes at ~2.0 TFLOP/s against ~2.9 for the 1040-input layer that sets ``bf16_matmul_tflops``;
the AMX kernel at ~2.3-2.45.

Checkpoints are unaffected: the fp32 masters are the model's parameters and the moments live in
the ``torch.optim.Adam`` state in its usual layout, so runs resume across both step paths.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from asrkd.models.dnn import DNN
from asrkd.kernels import amx_gemm
from asrkd.kernels import bf16_kernels as K
from asrkd.kernels.malloc_tuning import keep_freed_memory

# The hand-written AMX GEMM (:mod:`asrkd.kernels.amx_gemm`) takes the forward and input-gradient
# matmuls whose contraction is at least this long, where oneDNN's rate falls (hinton2015, 2
# threads, alternating runs: those matmuls ~200 -> ~160-175 ms per step). Shorter ones, and every
# weight gradient, stay with oneDNN, which was as fast or faster there. None: never.
AMX_MIN_K: int | None = 2048


def _use_amx(k: int) -> bool:
    """Forward and input gradient: the AMX GEMM when the contraction has ``k`` >= ``AMX_MIN_K`` terms."""
    return AMX_MIN_K is not None and k >= AMX_MIN_K and amx_gemm.available()


# The input gradients on the AMX GEMM also do the ReLU backward of the layer below in the GEMM's
# epilogue (:func:`asrkd.kernels.amx_gemm.dgrad_relu_backward`, the same values bit for bit): the
# gradient g never goes through memory and the separate pass over it goes. False: GEMM, then
# :func:`~asrkd.kernels.bf16_kernels.relu_backward_t` (kept for comparison).
AMX_FUSED_RELU_BACKWARD = True
# The fused form also takes contractions somewhat shorter than ``AMX_MIN_K``: on the 2000-class
# layer's input gradient (2048 x 2000 x 2560, 2 threads, operands out of cache) it ran ~11.3 ms
# per call against ~13.3 for oneDNN's matmul + relu_backward_t (the matmul alone ~9.8).
AMX_FUSED_MIN_K = 2000


def _use_amx_fused_dgrad(k: int) -> bool:
    """Input gradient with ``k`` contraction terms + the ReLU backward: the fused AMX kernel?"""
    return (AMX_FUSED_RELU_BACKWARD and AMX_MIN_K is not None and k >= min(AMX_MIN_K, AMX_FUSED_MIN_K)
            and amx_gemm.available())


def _use_amx_wgrad(rows: int, cols: int) -> bool:
    """Weight gradient ``h^T (rows, N) @ dz (N, cols)``: the AMX GEMM for wide layers whose
    output count is not a multiple of 64, oneDNN otherwise.

    Measured here (2 threads, h^T rows padded as in the step): oneDNN runs 2560 x 2048 x 2000 (the
    2000-class layer) at ~1.95 TFLOP/s alone but 2560 x 2048 x 2048 at ~2.3, and in the step that
    call took 11-16 ms (outliers to ~35) against 9.0-10 ms with the AMX GEMM (alone ~2.25-2.35).
    On 2560 x 2048 x 2560 oneDNN is faster (10.4 ms alone against 11.3), so it keeps those.
    """
    return _use_amx(rows) and cols % 64 != 0


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
        keep_freed_memory()  # the forward's activations are reallocated every step

    def _sync_copies(self) -> None:
        """(Re)make the bf16 copies from the fp32 masters (at start, and after anything else
        wrote the masters, e.g. ``load_state_dict``: seen through the tensors' version counters)."""
        with torch.no_grad():
            self.w_lo = [w.to(torch.bfloat16) for w in self.weights]
            self.b_lo = [b.to(torch.bfloat16) for b in self.biases]
        self._versions = [p._version for p in self.weights + self.biases]

    def gemm(self) -> str:
        """"amx" when the AMX GEMM takes any of this model's matmuls (the others stay with
        oneDNN), else "onednn"."""
        # forward (k = inputs), weight gradient, and input gradient of the layers above the first (k = outputs)
        uses_amx = any(_use_amx(w.shape[0]) or _use_amx_wgrad(*w.shape) for w in self.weights)
        uses_amx = uses_amx or any(_use_amx_fused_dgrad(w.shape[1]) or _use_amx(w.shape[1]) for w in self.weights[1:])
        return "amx" if uses_amx else "onednn"

    def _scratch(self, n: int) -> None:
        """(Re)allocate the backward's buffers for a batch of ``n`` frames.

        Fresh multi-megabyte tensors every step cost page faults and allocator work on a
        memory-bound CPU, so the gradients and the backward's activation-sized temporaries
        live across steps (the weight gradients are read by :meth:`update` anyway).
        """
        if getattr(self, "_scratch_n", None) == n:
            return
        widest = max(max(w.shape) for w in self.weights)
        # dz of two consecutive layers (ping-pong) and g. dz is not written over g: the kernel
        # would run several times slower (LLVM's vectorised loop is skipped for overlapping arrays).
        self._gz = [torch.empty(n * widest, dtype=torch.bfloat16) for _ in range(3)]
        # a layer input transposed; rows padded when they would be a multiple of 4 KiB long (a batch
        # of 2048): oneDNN's weight gradient reading it then ran ~5 % slower in the step
        self._ht_stride = n + 32 if (2 * n) % 4096 == 0 else n
        self._ht = torch.empty(self._ht_stride * widest, dtype=torch.bfloat16)
        self.grad_w = [torch.empty(w.shape, dtype=torch.bfloat16) for w in self.weights]
        self.grad_b = [torch.empty(b.shape, dtype=torch.float32) for b in self.biases]
        self._scratch_n = n

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x: (N, window, feat_dim)`` -> [bf16 input (N, D), each layer's output ..., logits (N, C)]."""
        if [p._version for p in self.weights + self.biases] != self._versions:
            self._sync_copies()
        cfg = self.model.cfg
        assert x.dim() == 3 and x.shape[1:] == (cfg.window, cfg.feat_dim), tuple(x.shape)
        last = len(self.weights) - 1
        keep = 1.0 - self.dropout
        hs = [x.reshape(x.shape[0], -1).to(torch.bfloat16)]  # hs[i]: input of layer i; hs[-1]: logits
        with torch.no_grad():
            for i in range(last + 1):
                if _use_amx(self.w_lo[i].shape[0]):
                    h = amx_gemm.matmul(hs[-1], self.w_lo[i], bias=self.b_lo[i], relu=i < last)
                else:
                    h = torch.ops.mkldnn._linear_pointwise(hs[-1], self.w_lo[i].t(), self.b_lo[i],
                                                           "relu" if i < last else "none", [], "")
                if i < last and self._dropout_on():
                    # dropped units become 0, so the backward's ReLU mask (h > 0) covers them too
                    h.mul_(torch.empty_like(h).bernoulli_(keep)).div_(keep)
                hs.append(h)
        self._scratch(x.shape[0])
        return hs

    def _dropout_on(self) -> bool:
        return self.dropout > 0 and self.model.training

    def _buf(self, k: int, rows: int, cols: int) -> torch.Tensor:
        return self._gz[k][:rows * cols].view(rows, cols)

    def forward_backward(self, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], tuple[torch.Tensor, Any]]
                         ) -> tuple[torch.Tensor, Any, torch.Tensor, float]:
        """``x: (N, window, feat_dim)`` -> (loss, loss_fn's extra, fp32 logits (N, C), grad norm).

        Leaves the bf16 weight gradients and fp32 bias gradients for :meth:`update`.
        """
        hs = self._forward(x)
        logits = hs[-1].float().requires_grad_()
        loss, extra = loss_fn(logits)
        loss.backward()
        assert logits.grad is not None
        n, c = logits.shape
        dz = self._buf(0, n, c)
        last = len(self.weights) - 1
        K.relu_backward_t(_bits(logits.grad.to(torch.bfloat16)), _bits(hs[-1]), False, 1.0, _bits(dz),
                          self.grad_b[last].numpy(), _bits(dz), False)
        return loss, extra, logits.detach(), self._backward(hs, 0)

    def forward_backward_ce(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, int, float]:
        """The hard-label cross-entropy step without fp32 logits or autograd:
        ``x: (N, window, feat_dim)``, ``labels: (N,)`` in [0, C) -> (mean loss, frames whose
        argmax is the label, grad norm). Same values as :meth:`forward_backward` with
        ``F.cross_entropy`` (the logits' gradient is computed in fp32 and rounded to bf16)."""
        hs = self._forward(x)
        n, c = hs[-1].shape
        dz = self._buf(0, n, c)
        total, correct = K.softmax_xent(_bits(hs[-1]), labels.to(torch.int64).numpy(), 1.0 / n, _bits(dz),
                                        self.grad_b[-1].numpy())
        return total / n, int(correct), self._backward(hs, 0)

    def _backward(self, hs: list[torch.Tensor], k: int) -> float:
        """Backpropagates from the logits' bf16 gradient in buffer ``k`` (0 or 1; the last
        bias gradient already summed) through every layer; fills the weight and bias gradients;
        returns the gradient norm."""
        last = len(self.weights) - 1
        keep = 1.0 - self.dropout
        dropout = self._dropout_on()
        n = hs[0].shape[0]
        scale = 1.0 / keep if dropout else 1.0  # the dropout's 1 / (1 - p) on kept units
        sumsq = float(self.grad_b[last].double().square().sum())
        with torch.no_grad():
            dz_above = self._buf(k, n, hs[-1].shape[1])  # dz of layer i + 1, its weight gradient waits for hs[i + 1]^T
            for i in range(last - 1, -1, -1):
                o = hs[i + 1].shape[1]
                h_t = self._ht[:o * self._ht_stride].view(o, self._ht_stride)[:, :n]
                dz = self._buf(1 - k, n, o)
                # h_t = hs[i + 1]^T, layer i + 1's input transposed
                if _use_amx_fused_dgrad(dz_above.shape[1]):
                    amx_gemm.dgrad_relu_backward(dz_above, self.w_lo[i + 1], hs[i + 1], b_transposed=True,
                                                 scale=scale, out=dz, db=self.grad_b[i], h_t=h_t)
                else:
                    if _use_amx(dz_above.shape[1]):
                        g = amx_gemm.matmul(dz_above, self.w_lo[i + 1], b_transposed=True, out=self._buf(2, n, o))
                    else:
                        g = torch.mm(dz_above, self.w_lo[i + 1].t(), out=self._buf(2, n, o))
                    K.relu_backward_t(_bits(g), _bits(hs[i + 1]), True, scale,
                                      _bits(dz), self.grad_b[i].numpy(), _bits(h_t), True)
                sumsq += float(self.grad_b[i].double().square().sum())
                sumsq += self._weight_grad(i + 1, h_t, dz_above)
                dz_above, k = dz, 1 - k
            x_t = self._ht[:hs[0].shape[1] * self._ht_stride].view(hs[0].shape[1], self._ht_stride)[:, :n]
            K.transpose(_bits(hs[0]), _bits(x_t))
            sumsq += self._weight_grad(0, x_t, dz_above)
        return math.sqrt(sumsq)

    def _weight_grad(self, i: int, h_t: torch.Tensor, dz: torch.Tensor) -> float:
        """Layer i's weight gradient ``h^T @ dz`` (in, out) bf16; returns its sum of squares."""
        if _use_amx_wgrad(*self.grad_w[i].shape):
            gw = amx_gemm.matmul(h_t, dz, out=self.grad_w[i])
        else:
            gw = torch.mm(h_t, dz, out=self.grad_w[i])
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
