"""Atomic file writes and completion markers.

Every step writes its outputs, then a marker (``.done``) last; a step whose marker exists is
skipped unless forced, and a killed step leaves no marker, so nothing looks complete that is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

DONE_MARKER = ".done"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_text_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless ``path`` already holds exactly it (its mtime then stays,
    so a rerun of a step that remakes the same file does not look like new input). Returns
    whether it wrote."""
    data = text.encode("utf-8")
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    atomic_write_bytes(path, data)
    return True


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_done(directory: Path, name: str = DONE_MARKER) -> bool:
    return (Path(directory) / name).is_file()


def mark_done(directory: Path, info: dict[str, Any] | None = None, name: str = DONE_MARKER) -> None:
    """Write the completion marker (the last file a step writes)."""
    payload = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": " ".join(sys.argv)}
    payload.update(info or {})
    atomic_write_json(Path(directory) / name, payload)


def clear_done(directory: Path, name: str = DONE_MARKER) -> None:
    p = Path(directory) / name
    if p.exists():
        p.unlink()


def remove_tree(path: Path) -> None:
    if Path(path).exists():
        shutil.rmtree(path)


def sha256_file(path: Path, chunk: int = 1 << 22, on_block: Callable[[int, bytes], None] | None = None) -> str:
    """sha256 of the file at ``path``, read ``chunk`` bytes at a time; ``on_block(offset, block)``
    sees every block of that one read (e.g. a value check that costs no second pass)."""
    h = hashlib.sha256()
    offset = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
            if on_block is not None:
                on_block(offset, block)
            offset += len(block)
    return h.hexdigest()


def sha256_strings(items: Iterable[str]) -> str:
    h = hashlib.sha256()
    for s in items:
        h.update(s.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()
