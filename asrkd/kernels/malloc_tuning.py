"""Keep glibc's malloc from handing freed activation-sized blocks back to the OS.

A bf16 training step allocates and frees about a hundred megabytes of activations (oneDNN's
fused linear has no ``out=`` variant). With glibc's default, dynamically adjusted thresholds,
the freed top of the heap is trimmed after each step and the next step page-faults the same
memory in again, inside the matmuls: ~10 k minor faults and ~40 ms per hinton2015 step on one
core (measured with ``getrusage`` and the step profile, tools/bench_train.py). The fp32
autograd step suffers the same: at 2,000 classes a 2 x 128 student's logits, softmax and
gradient are 4 MB each per 512-frame batch, and fixing the thresholds took its step from about
15 to 10-12 ms here (AMD EPYC, 2 cores). Training (every step path) and cache-targets call it.

Fixing the thresholds makes blocks up to 32 MB come from the heap and keeps freed memory
mapped (up to 2 GB free at the top of the heap), so after the first step the allocations are
reused without faults. The setting is process-wide and only affects how eagerly memory is
returned to the OS, never what is computed.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("asrkd.kernels.malloc_tuning")

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (HEAP_MAX_SIZE / 2 on 64-bit)
_TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes a C int

_applied = False


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds once per process; False where unavailable
    (not Linux/glibc), which only costs speed."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    log.debug("glibc malloc thresholds fixed: %s", _applied)
    return _applied
