"""Shared bits of the tools/bench_*.py benchmarks (kept out of asrkd/: benchmarks are tools)."""

from __future__ import annotations

import sys


class BenchSkipped(Exception):
    """Raised by a benchmark that cannot run here (e.g. its corpus is missing); the message says why."""


def say(msg: str) -> None:
    """Progress for humans: stderr, so stdout keeps only the final JSON line."""
    print(msg, file=sys.stderr, flush=True)
