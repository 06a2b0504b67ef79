"""What an audio file's header promises, to catch truncated files.

libsndfile reads a truncated WAV or NIST SPHERE file without complaint: it returns the samples
that are there, so a file cut short by a failed copy decodes "fine" and silently yields a
shorter utterance. The header still states how much audio there should be; comparing it with
what the file holds tells a truncated file from a short one. (A truncated FLAC fails to decode,
which soundfile reports by itself.)
"""

from __future__ import annotations

import struct
from pathlib import Path

# Streaming writers that cannot seek back leave these placeholders in the RIFF data size.
_RIFF_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _riff_missing_bytes(path: Path) -> int | None:
    """Bytes of the ``data`` chunk promised by the RIFF header but absent from the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack(endian + "4sI", f.read(8))
            if chunk_id == b"data":
                if chunk_size in _RIFF_UNKNOWN_SIZES:
                    return None
                return max(0, pos + 8 + chunk_size - size)
            pos += 8 + chunk_size + (chunk_size & 1)  # chunks are word aligned
    return None


def _nist_missing_bytes(path: Path) -> int | None:
    """Bytes of samples promised by a NIST SPHERE header but absent from the file."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head.startswith(b"NIST_1A"):
        return None
    lines = head.decode("ascii", errors="replace").splitlines()
    try:
        header_bytes = int(lines[1].strip())
    except (IndexError, ValueError):
        return None
    fields: dict[str, str] = {}
    for line in lines[2:]:
        parts = line.split()
        if parts and parts[0] == "end_head":
            break
        if len(parts) >= 3:
            fields[parts[0]] = parts[2]
    try:
        expected = int(fields["sample_count"]) * int(fields.get("channel_count", "1")) * int(
            fields["sample_n_bytes"]
        )
    except (KeyError, ValueError):
        return None
    if "compressed" in fields.get("sample_coding", "") or "shorten" in fields.get("sample_coding", ""):
        return None  # compressed payload: its size says nothing about the sample count
    return max(0, header_bytes + expected - path.stat().st_size)


def missing_bytes(path: Path) -> int | None:
    """How many bytes of audio the header of ``path`` promises that the file does not hold.

    Returns 0 for a complete file, a positive count for a truncated one, and None when the
    format has no such promise we can check (FLAC, streaming WAV, unknown formats).
    """
    path = Path(path)
    return _riff_missing_bytes(path) if _is_riff(path) else _nist_missing_bytes(path)


def _is_riff(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"RIFF", b"RIFX")
