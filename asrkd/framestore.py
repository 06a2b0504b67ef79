"""The one frame store for every per-frame array (features, labels, soft targets).

Layout of a store directory::

    meta.json        format, version, dtype, row shape, counts, parts with sha256, attrs
    index.tsv        <utt> <part> <offset_rows> <num_rows>   (sorted by utt)
    part-<name>.bin  raw C-order rows of dtype x shape, utterances back to back
    .done            completion marker, written last

Arrays are keyed by utterance id and stored unpadded: ``store[utt]`` is ``(frames, *shape)``.
Reading memory-maps the parts, so a store larger than RAM is fine.

Writing happens in *parts* so that parallel jobs (``--nj``) and torchrun ranks each write their
own file: :class:`PartWriter` writes ``part-<name>.bin`` + ``part-<name>.idx`` to temporary
names and renames them on :meth:`PartWriter.close`; a part whose ``.idx`` exists is complete
(:func:`part_done`), so a killed run redoes only unfinished parts. :func:`finalize_store`
merges the part indexes, checks them, checksums the parts, and writes ``index.tsv``,
``meta.json`` and the marker. Parts are deterministic for deterministic input, so a resumed
run is byte-identical to an uninterrupted one.

Reading verifies (:meth:`FrameStore.check_integrity`, on by default when a store is opened):
every part's size and sha256 against ``meta.json``, the index against the parts and the frame
total, and, for float stores, that every value is finite (a NaN names its utterance). A store
verified once is not re-read by the same process while its files are unchanged (size and
mtime). ``set_verify_on_open(False)`` (the ``--no-verify`` option of the commands that read
stores) skips it for stores too large to hash at every start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.fileio import (
    DONE_MARKER,
    atomic_write_json,
    atomic_write_text,
    is_done,
    mark_done,
    read_json,
    sha256_file,
)

FORMAT = "asrkd-framestore"
VERSION = 1
_READ_BLOCK = 1 << 24  # bytes hashed / checked for finiteness at a time

_verify_on_open = True
# Stores this process verified: directory -> signature (meta.json and parts: size, mtime_ns).
_verified: dict[str, tuple] = {}


def set_verify_on_open(on: bool) -> None:
    """Whether :class:`FrameStore` verifies stores when they are opened (default True)."""
    global _verify_on_open
    _verify_on_open = bool(on)


def _part_paths(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / f"part-{name}.bin", directory / f"part-{name}.idx"


def part_done(directory: Path, name: str) -> bool:
    """True when part ``name`` was closed (its index was renamed into place)."""
    return _part_paths(Path(directory), name)[1].is_file()


class PartWriter:
    """Appends utterance arrays to one part of a store.

    ``dtype``/``shape``: every array added must be ``(frames, *shape)`` and castable to ``dtype``.
    """

    def __init__(self, directory: Path, name: str, dtype: str | np.dtype, shape: tuple[int, ...]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if "/" in name or not name:
            raise ValueError(f"bad part name {name!r}")
        self.name = name
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.bin_path, self.idx_path = _part_paths(self.directory, name)
        self._tmp_bin = self.bin_path.with_suffix(".bin.tmp")
        self._f = open(self._tmp_bin, "wb")
        self._rows = 0
        self._index: list[tuple[str, int, int]] = []
        self._seen: set[str] = set()

    def add(self, utt: str, array: np.ndarray) -> None:
        """Append ``array`` of shape ``(frames, *shape)`` for utterance ``utt``."""
        a = np.asarray(array)
        if a.shape[1:] != self.shape:
            raise AsrkdError(
                f"frame store {self.directory}: {utt}: row shape {a.shape[1:]} != {self.shape}"
            )
        if utt in self._seen:
            raise AsrkdError(f"frame store {self.directory}: duplicate utterance {utt!r}")
        self._seen.add(utt)
        a = np.ascontiguousarray(a, dtype=self.dtype)
        self._f.write(a.tobytes())
        self._index.append((utt, self._rows, a.shape[0]))
        self._rows += a.shape[0]

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._tmp_bin, self.bin_path)
        # The index is renamed last: its presence means the part is complete.
        atomic_write_text(self.idx_path, "".join(f"{u} {o} {n}\n" for u, o, n in self._index))

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        if self._tmp_bin.exists():
            self._tmp_bin.unlink()

    def __enter__(self) -> "PartWriter":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def finalize_store(
    directory: Path,
    dtype: str | np.dtype,
    shape: tuple[int, ...],
    attrs: dict[str, Any] | None = None,
    expected_frames: dict[str, int] | None = None,
) -> "FrameStore":
    """Merge all closed parts of ``directory`` into one index and mark the store complete.

    ``expected_frames``: if given ({utt: frames}), every stored utterance must have exactly that many
    rows (checked against ``utt2num_frames`` by the callers), else AsrkdError.
    """
    directory = Path(directory)
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    row_bytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    index: dict[str, tuple[str, int, int]] = {}
    parts = []
    for idx_path in sorted(directory.glob("part-*.idx")):
        name = idx_path.name[len("part-") : -len(".idx")]
        bin_path = directory / f"part-{name}.bin"
        rows = 0
        for line in idx_path.read_text(encoding="utf-8").splitlines():
            utt, off, n = line.split()
            if utt in index:
                raise AsrkdError(f"frame store {directory}: {utt} is in two parts")
            index[utt] = (name, int(off), int(n))
            rows = max(rows, int(off) + int(n))
        size = bin_path.stat().st_size
        if size != rows * row_bytes:
            raise AsrkdError(f"frame store {directory}: part {name} has {size} bytes, expected {rows * row_bytes}")
        parts.append({"name": name, "bytes": size, "sha256": sha256_file(bin_path)})
    if expected_frames is not None:
        check_frame_counts(directory, {u: v[2] for u, v in index.items()}, expected_frames)
    atomic_write_text(
        directory / "index.tsv",
        "".join(f"{u} {p} {o} {n}\n" for u, (p, o, n) in sorted(index.items())),
    )
    atomic_write_json(
        directory / "meta.json",
        {
            "format": FORMAT,
            "version": VERSION,
            "dtype": dtype.str,
            "shape": list(shape),
            "num_utts": len(index),
            "num_frames": int(sum(v[2] for v in index.values())),
            "parts": parts,
            "attrs": attrs or {},
        },
    )
    mark_done(directory)
    return FrameStore(directory, verify=False)  # just checksummed; readers verify when they open it


def check_frame_counts(where: Any, got: dict[str, int], expected: dict[str, int]) -> None:
    """Raise AsrkdError listing utterances whose frame count differs from ``expected``."""
    bad = [(u, n, expected.get(u)) for u, n in got.items() if expected.get(u) != n]
    if bad:
        sample = ", ".join(f"{u}: {n} vs {e}" for u, n, e in bad[:5])
        raise AsrkdError(
            f"{where}: {len(bad)} utterance(s) whose frame count differs from utt2num_frames "
            f"(stored vs expected): {sample}"
        )


def write_store(
    directory: Path,
    items: Iterable[tuple[str, np.ndarray]],
    dtype: str | np.dtype,
    shape: tuple[int, ...],
    attrs: dict[str, Any] | None = None,
    expected_frames: dict[str, int] | None = None,
) -> "FrameStore":
    """Write a whole store in one part (the simple, single-process case)."""
    with PartWriter(directory, "0", dtype, shape) as w:
        for utt, a in items:
            w.add(utt, a)
    return finalize_store(directory, dtype, shape, attrs, expected_frames)


@dataclass(frozen=True)
class _Entry:
    part: str
    offset: int
    rows: int


class FrameStore:
    """Read-only view of a complete store. ``store[utt]`` -> ``(frames, *shape)`` memmap view."""

    def __init__(self, directory: Path, verify: bool | None = None):
        """``verify``: check integrity now (None = the process default, see module docstring)."""
        self.directory = Path(directory)
        if not is_done(self.directory):
            raise AsrkdError(
                f"frame store {self.directory} is missing or incomplete (no {DONE_MARKER} marker); "
                "rerun the step that writes it"
            )
        meta = read_json(self.directory / "meta.json")
        if meta.get("format") != FORMAT:
            raise AsrkdError(f"{self.directory}: not an asrkd frame store")
        self.meta = meta
        self.dtype = np.dtype(meta["dtype"])
        self.shape: tuple[int, ...] = tuple(meta["shape"])
        self.attrs: dict[str, Any] = meta.get("attrs", {})
        self._index: dict[str, _Entry] = {}
        for line in (self.directory / "index.tsv").read_text(encoding="utf-8").splitlines():
            utt, p, o, n = line.split()
            self._index[utt] = _Entry(p, int(o), int(n))
        self._maps: dict[str, np.ndarray] = {}
        self._fds: dict[str, int] = {}  # part -> file descriptor of :meth:`read`
        if _verify_on_open if verify is None else verify:
            self.check_integrity()

    def _part(self, name: str) -> np.ndarray:
        m = self._maps.get(name)
        if m is None:
            path = self.directory / f"part-{name}.bin"
            if path.stat().st_size == 0:
                m = np.zeros((0, *self.shape), dtype=self.dtype)
            else:
                m = np.memmap(path, dtype=self.dtype, mode="r").reshape(-1, *self.shape)
            self._maps[name] = m
        return m

    def __getitem__(self, utt: str) -> np.ndarray:
        e = self._entry(utt)
        return self._part(e.part)[e.offset : e.offset + e.rows]

    def _entry(self, utt: str) -> "_Entry":
        try:
            return self._index[utt]
        except KeyError:
            raise AsrkdError(f"frame store {self.directory}: no utterance {utt!r}") from None

    def read(self, utt: str, out: np.ndarray | None = None) -> np.ndarray:
        """A private copy of ``utt``'s rows, read with ``pread`` instead of through the mapping
        (into ``out``, a C-contiguous ``(frames, *shape)`` array of the store's dtype, if given).

        What streams over a whole store (the training loader, cache-targets) reads this way:
        pages of a mapping count in the process's resident set for as long as the mapping
        lives, so reading a 3 GB store through ``store[utt]`` grows RSS by 3 GB, while read
        pages stay in the kernel's page cache only (tools/scale_rehearsal.py measured both)."""
        e = self._entry(utt)
        if out is None:
            out = np.empty((e.rows, *self.shape), dtype=self.dtype)
        elif out.shape != (e.rows, *self.shape) or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise AsrkdError(f"frame store {self.directory}: {utt}: cannot read {e.rows} x {self.shape} "
                             f"{self.dtype} rows into a {out.shape} {out.dtype} array")
        if out.nbytes:
            fd = self._fds.get(e.part)
            if fd is None:
                fd = self._fds[e.part] = os.open(self.directory / f"part-{e.part}.bin", os.O_RDONLY)
            row = out.nbytes // e.rows
            got = os.preadv(fd, [memoryview(out).cast("B")], e.offset * row)
            if got != out.nbytes:
                raise AsrkdError(f"frame store {self.directory}: {utt}: read {got} of {out.nbytes} bytes (truncated part?)")
        return out

    def __del__(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __contains__(self, utt: object) -> bool:
        return utt in self._index

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> list[str]:
        return sorted(self._index)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for u in self.keys():
            yield u, self[u]

    def num_frames(self, utt: str) -> int:
        return self._index[utt].rows

    def frame_counts(self) -> dict[str, int]:
        return {u: e.rows for u, e in self._index.items()}

    @property
    def total_frames(self) -> int:
        return int(self.meta["num_frames"])

    def check_frames(self, expected: dict[str, int]) -> None:
        """Every utterance in ``expected`` is stored with exactly that many frames."""
        missing = sorted(set(expected) - set(self._index))
        if missing:
            raise AsrkdError(f"frame store {self.directory}: {len(missing)} utterance(s) missing, e.g. {missing[:5]}")
        check_frame_counts(f"frame store {self.directory}", {u: self._index[u].rows for u in expected}, expected)

    def _signature(self) -> tuple:
        files = [self.directory / "meta.json", self.directory / "index.tsv"]
        files += [self.directory / f"part-{p['name']}.bin" for p in self.meta["parts"]]
        return tuple((f.name, s.st_size, s.st_mtime_ns) for f in files if f.exists() for s in [f.stat()])

    def check_integrity(self) -> None:
        """Raise AsrkdError naming every problem :meth:`verify` finds (skipped when this process
        already verified the unchanged files)."""
        key = str(self.directory.resolve())
        sig = self._signature()
        if _verified.get(key) == sig:
            return
        problems = self.verify()
        if problems:
            shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
            raise AsrkdError(f"frame store {self.directory} is damaged: {shown}. Rebuild it "
                             "(rerun the step that wrote it with --force)")
        _verified[key] = sig

    def verify(self, finite: bool = True) -> list[str]:
        """Recompute part sizes and checksums, check the index against the parts and, for float
        stores when ``finite``, that every value is finite; return the problems (empty = intact)."""
        problems = []
        row_bytes = self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
        part_rows: dict[str, int] = {}
        check_finite = finite and self.dtype.kind in "fc"
        for p in self.meta["parts"]:
            path = self.directory / f"part-{p['name']}.bin"
            if not path.is_file():
                problems.append(f"{path}: missing")
                continue
            size = path.stat().st_size
            if size != p["bytes"]:
                problems.append(f"{path}: size {size} != {p['bytes']} (truncated or overwritten)")
                continue
            part_rows[p["name"]] = size // row_bytes if row_bytes else 0
            digest, bad_rows = _scan_part(path, self.dtype, row_bytes, check_finite)
            if digest != p["sha256"]:
                problems.append(f"{path}: checksum mismatch (corrupted)")
            if bad_rows.size:
                utts = self._utts_of_rows(p["name"], bad_rows)
                problems.append(f"{path}: non-finite values (NaN/inf) in {len(utts)} utterance(s): "
                                + ", ".join(utts[:5]))
        listed = {p["name"] for p in self.meta["parts"]}
        for utt, e in self._index.items():
            if e.part not in listed:
                problems.append(f"{self.directory}/index.tsv: {utt} is in part {e.part!r}, which meta.json does not list")
            elif e.part in part_rows and e.offset + e.rows > part_rows[e.part]:
                problems.append(f"{self.directory}/index.tsv: {utt} rows {e.offset}..{e.offset + e.rows} "
                                f"beyond part {e.part} ({part_rows[e.part]} rows)")
        total = sum(e.rows for e in self._index.values())
        if total != int(self.meta.get("num_frames", total)) or len(self._index) != int(self.meta.get("num_utts", len(self._index))):
            problems.append(f"{self.directory}: index.tsv has {len(self._index)} utterances / {total} frames, "
                            f"meta.json {self.meta.get('num_utts')} / {self.meta.get('num_frames')}")
        return problems

    def _utts_of_rows(self, part: str, rows: np.ndarray) -> list[str]:
        """Sorted utterance ids of ``part`` that hold any of the row numbers ``rows``."""
        out = set()
        for utt, e in self._index.items():
            if e.part == part and np.any((rows >= e.offset) & (rows < e.offset + e.rows)):
                out.add(utt)
        return sorted(out)


def _scan_part(path: Path, dtype: np.dtype, row_bytes: int, check_finite: bool) -> tuple[str, np.ndarray]:
    """One read of a part file: its sha256 and (float stores) the row numbers holding a non-finite value."""
    bad: list[np.ndarray] = []

    def finite(offset: int, buf: bytes) -> None:
        vals = np.frombuffer(buf, dtype=dtype)
        if not np.isfinite(vals).all():
            items_per_row = row_bytes // dtype.itemsize
            bad.append(offset // row_bytes + np.unique(np.flatnonzero(~np.isfinite(vals)) // items_per_row))

    # Blocks are whole rows so that a non-finite value maps to its row.
    block = max(row_bytes, (_READ_BLOCK // max(row_bytes, 1)) * row_bytes) if row_bytes else _READ_BLOCK
    digest = sha256_file(path, block, finite if check_finite and row_bytes else None)
    return digest, (np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64))
