"""numba's thread pool sized like torch's (the training step's fused kernels, the top-k kernel
of ``cache-targets``)."""

from __future__ import annotations

import numba


def match_numba_threads(n: int) -> int:
    """Run numba's parallel kernels on at most ``n`` threads (torch's count); returns the
    previous count. numba sizes its pool from the cores, not from OMP_NUM_THREADS, and its
    spinning OpenMP threads and torch's then oversubscribe the cores: two trainings side by side
    with OMP_NUM_THREADS=1 but numba at its default ran ~15x slower here (4.3k against 63k
    frames/s)."""
    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    return prev
