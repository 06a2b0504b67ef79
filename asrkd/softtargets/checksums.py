"""The checksums of a soft-target cache, shared by its writer (:mod:`.cache`) and its checker
(:mod:`.verify`), which imports the writer's reader: this module sits below both.

``meta.json`` lists the sha256 of every file of the cache but itself (array store parts, part
indexes, ``index.tsv``, store metas, ``spec.json``); ``meta.sha256`` holds the sha256 of
``meta.json``; ``frame_counts_sha256`` fingerprints the cached utterances and their frame counts.
"""

from __future__ import annotations

from pathlib import Path

from asrkd.fileio import DONE_MARKER, atomic_write_text, sha256_file, sha256_strings

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


def frame_counts_fingerprint(frame_counts: dict[str, int]) -> str:
    """sha256 of the sorted ``<utt> <frames>`` lines."""
    return sha256_strings(f"{u} {frame_counts[u]}" for u in sorted(frame_counts))
