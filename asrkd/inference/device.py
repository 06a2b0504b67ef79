"""Where and in what precision models run: one resolver for ``--device`` and one for ``--precision``.

Devices: ``auto`` (the GPU when CUDA is available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
Under torchrun (``LOCAL_RANK`` set) ``auto``/``cuda`` mean the rank's own GPU, ``cuda:LOCAL_RANK``.

Precisions: ``auto`` is bf16 autocast on CPUs that compute bf16 natively (AVX512-BF16/AMX,
oneDNN's check) and fp32 on other CPUs; on a GPU bf16 where supported, else fp16 (AMP).
Weights stay fp32 in every case; autocast only lowers the matmuls.

On a GPU, host batches are copied from pinned (page-locked) memory with ``non_blocking=True``, so
the copy overlaps the previous batch's compute; on the CPU they are used as they are.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, ContextManager

import torch

from asrkd.errors import AsrkdError
from asrkd.inference.spec import PRECISIONS, check_device_spec

CPU = torch.device("cpu")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto|cpu|cuda|cuda:N`` -> a torch device that exists on this machine.

    auto: CUDA when available, else the CPU. cuda/cuda:N without CUDA, or N beyond the GPUs
    present: AsrkdError that says so."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = check_device_spec(spec)
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return CPU
    if not torch.cuda.is_available():
        raise AsrkdError(f"device {spec!r}: CUDA is not available here (no GPU, or torch "
                         f"{torch.__version__} built without CUDA); use --device cpu or auto")
    if ":" in spec:
        index = int(spec.split(":", 1)[1])
    elif "LOCAL_RANK" in os.environ:
        index = int(os.environ["LOCAL_RANK"])  # torchrun: one GPU per local rank
    else:
        return torch.device("cuda")
    if index >= torch.cuda.device_count():
        raise AsrkdError(f"device {spec!r}: this machine has {torch.cuda.device_count()} GPU(s) "
                         f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return torch.device("cuda", index)


def resolve_precision(precision: str, device: torch.device = CPU) -> str:
    """``auto|bf16|fp16|fp32`` -> the precision to run at on ``device``: bf16, fp16 or fp32."""
    if precision not in PRECISIONS:
        raise AsrkdError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def autocast(precision: str, device: torch.device = CPU) -> ContextManager[Any]:
    """The autocast context of a resolved ``precision`` on ``device``'s type (none for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("bf16", "fp16"):
        raise AsrkdError(f"autocast: resolve the precision first (bf16, fp16 or fp32), got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def pin(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` in pinned host memory when it is bound for a GPU (so its copy can be asynchronous);
    unchanged for the CPU. Called where batches are made (e.g. the loader's thread)."""
    if device.type != "cuda" or t.device.type != "cpu" or t.is_pinned():
        return t
    return t.pin_memory()


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``: itself on the CPU; on a GPU an asynchronous copy from pinned
    memory (the caller's next use on that GPU's stream is ordered after it)."""
    if device.type == "cpu":
        return t
    return pin(t, device).to(device, non_blocking=True)
