"""Logging and progress: library code logs, never prints (DESIGN.md).

:func:`progress` shows a tqdm bar on a terminal and plain periodic log lines otherwise (CI
logs, ``nohup``), so long loops are visible either way.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

log = logging.getLogger("asrkd")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False, log_file: Path | None = None) -> None:
    """Configure the root ``asrkd`` logger: stderr, plus ``log_file`` (appended) if given."""
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("asrkd")
    root.setLevel(level)
    if not any(getattr(h, "_asrkd_stderr", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(_FORMAT, "%H:%M:%S"))
        h._asrkd_stderr = True  # type: ignore[attr-defined]
        root.addHandler(h)
    if log_file is not None:
        add_log_file(log_file)


def add_log_file(log_file: Path) -> None:
    """Also append the log to ``log_file`` (experiment directories keep their own log)."""
    root = logging.getLogger("asrkd")
    path = str(Path(log_file).resolve())
    if any(getattr(h, "baseFilename", None) == path for h in root.handlers):
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(path, encoding="utf-8")
    fh.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
    root.addHandler(fh)


def progress(
    items: Iterable[T], total: int | None = None, desc: str = "", every_s: float = 30.0
) -> Iterator[T]:
    """Iterate ``items`` showing progress: tqdm on a TTY, else a log line every ``every_s`` s."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, dynamic_ncols=True, leave=False)
        return
    start = last = time.monotonic()
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            of = f"/{total}" if total else ""
            log.info("%s: %d%s done (%.0f s)", desc or "progress", n, of, now - start)
