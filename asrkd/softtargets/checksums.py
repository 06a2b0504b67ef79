"""The checksums of a soft-target cache: written by the writer (:mod:`.cache`), checked by its
reader on open, by the writer before it skips a complete cache, and by ``verify-targets``
(:mod:`.verify`, which imports the reader): this module sits below both.

``meta.json`` lists the sha256 of every file of the cache but itself (array store parts, part
indexes, ``index.tsv``, store metas, ``spec.json``); ``meta.sha256`` holds the sha256 of
``meta.json``; ``frame_counts_sha256`` fingerprints the cached utterances and their frame counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asrkd.errors import AsrkdError
from asrkd.fileio import DONE_MARKER, atomic_write_text, is_done, sha256_file, sha256_strings

META_SHA = "meta.sha256"


def cache_files(directory: Path) -> list[str]:
    """Relative paths of every checksummed file: all files but meta.json, meta.sha256,
    completion markers and leftover temporary files."""
    directory = Path(directory)
    out = []
    for p in sorted(directory.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(directory).as_posix()
        if rel in ("meta.json", META_SHA) or p.name == DONE_MARKER or ".tmp" in p.name:
            continue
        out.append(rel)
    return out


def file_checksums(directory: Path) -> dict[str, str]:
    """{relative path: sha256} of :func:`cache_files`."""
    return {rel: sha256_file(Path(directory) / rel) for rel in cache_files(directory)}


def write_meta_checksum(directory: Path) -> None:
    atomic_write_text(Path(directory) / META_SHA, sha256_file(Path(directory) / "meta.json") + "\n")


def check_meta_checksum(directory: Path) -> None:
    """AsrkdError unless ``meta.sha256`` holds the sha256 of ``meta.json`` (checked on every open:
    meta.json carries T, the format and every file's checksum)."""
    sha_path, meta_path = Path(directory) / META_SHA, Path(directory) / "meta.json"
    if not sha_path.is_file() or sha_path.read_text(encoding="utf-8", errors="replace").strip() != sha256_file(meta_path):
        raise AsrkdError(f"soft-target cache {directory}: meta.json does not match {META_SHA} (corrupted or "
                         "edited); rebuild it with `asrkd cache-targets ... --force`")


def integrity_problems(d: Path) -> tuple[list[str], dict[str, Any] | None]:
    """(every integrity problem of cache ``d``: marker, meta.sha256, each file against meta.json's
    checksums; the parsed meta.json, or None when it is missing or unreadable)."""
    problems: list[str] = []
    if not is_done(d):
        problems.append(f"{d}: incomplete (no {DONE_MARKER}); rerun cache-targets")
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        return problems + [f"{meta_path}: missing"], None
    sha_path = d / META_SHA
    if not sha_path.is_file():
        problems.append(f"{sha_path}: missing")
    elif sha_path.read_text(encoding="utf-8", errors="replace").strip() != sha256_file(meta_path):
        problems.append(f"{meta_path}: checksum mismatch (corrupted)")
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return problems + [f"{meta_path}: unreadable ({e})"], None
    expected = meta.get("checksums")
    if not isinstance(expected, dict):
        return problems + [f"{meta_path}: no checksums"], None
    present = set(cache_files(d))
    for rel in sorted(set(expected) - present):
        problems.append(f"{d / rel}: missing")
    for rel in sorted(present - set(expected)):
        problems.append(f"{d / rel}: unexpected file")
    for rel in sorted(set(expected) & present):
        if sha256_file(d / rel) != expected[rel]:
            problems.append(f"{d / rel}: checksum mismatch (corrupted)")
    return problems, meta


def frame_counts_fingerprint(frame_counts: dict[str, int]) -> str:
    """sha256 of the sorted ``<utt> <frames>`` lines."""
    return sha256_strings(f"{u} {frame_counts[u]}" for u in sorted(frame_counts))
