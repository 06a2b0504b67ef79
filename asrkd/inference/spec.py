"""The syntax of ``--device``, ``--precision`` and ``--combine``, without torch.

Argument parsing and completion checks import this, so a step that finds its output complete
never pays torch's start-up (seconds); :mod:`asrkd.inference.device` resolves the specs.
"""

from __future__ import annotations

import re
from typing import Literal

from asrkd.errors import AsrkdError

PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")
CombineRule = Literal["mean", "geometric"]  # how an ensemble combines its members (asrkd.inference.ensemble)
COMBINE_RULES: tuple[str, ...] = ("mean", "geometric")

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

def check_device_spec(spec: str) -> str:
    """``spec`` unchanged if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; AsrkdError otherwise
    (syntax only: whether that GPU exists is :func:`asrkd.inference.device.resolve_device`'s question)."""
    if not isinstance(spec, str) or not _DEVICE_RE.match(spec):
        raise AsrkdError(f"device must be one of auto, cpu, cuda, cuda:N; got {spec!r}")
    return spec
