"""OpenFst files as plain arrays, for the numba search and for graph statistics.

A decoding graph is written as an OpenFst ``ConstFst`` (``HCLG.fst``): a fixed header, then one
20-byte record per state and one 16-byte record per arc, arcs of a state contiguous. That layout
is already compressed sparse rows, so :func:`read_const_fst` maps it into numpy without touching
every arc in Python (a Python loop over a million arcs through kaldifst's iterators takes seconds).

Header (OpenFst ``FstHeader``, little-endian): int32 magic 2125659606, the FST type and arc type
as int32-length-prefixed strings (``const``, ``standard``), int32 version, int32 flags, uint64
properties, int64 start, int64 number of states, int64 number of arcs. States: float32 final
weight (+inf: not final), uint32 first arc, uint32 arcs, uint32 input- and output-epsilon counts.
Arcs: int32 ilabel, int32 olabel, float32 weight (a cost), int32 next state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkd.errors import AsrkdError

FST_MAGIC = 2125659606
_STATE = np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("nieps", "<u4"), ("noeps", "<u4")])
_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])


@dataclass
class FstArrays:
    """A graph in CSR form. ``arc_start: (S+1,)``; ``ilabel, olabel, weight, nextstate: (A,)``
    (weights are costs, -log); ``final: (S,)`` cost of ending in each state (+inf: not final)."""

    start: int
    final: np.ndarray
    arc_start: np.ndarray
    ilabel: np.ndarray
    olabel: np.ndarray
    weight: np.ndarray
    nextstate: np.ndarray

    @property
    def num_states(self) -> int:
        return len(self.final)

    @property
    def num_arcs(self) -> int:
        return len(self.ilabel)


def _read_string(buf: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<i", buf, off)
    return buf[off + 4: off + 4 + n].decode("ascii"), off + 4 + n


def read_const_header(path: Path | str) -> tuple[int, int, int]:
    """``(start, number of states, number of arcs)`` from an OpenFst const file's header."""
    with open(path, "rb") as f:
        head = f.read(256)
    if len(head) < 8 or struct.unpack_from("<i", head, 0)[0] != FST_MAGIC:
        raise AsrkdError(f"{path}: not an OpenFst file")
    _, off = _read_string(head, 4)
    _, off = _read_string(head, off)
    _version, _flags, _props, start, ns, na = struct.unpack_from("<iiQqqq", head, off)
    return int(start), int(ns), int(na)


def read_const_fst(path: Path | str) -> FstArrays:
    """Read an OpenFst ``const`` file of ``standard`` (tropical) arcs into :class:`FstArrays`."""
    buf = Path(path).read_bytes()
    if len(buf) < 8 or struct.unpack_from("<i", buf, 0)[0] != FST_MAGIC:
        raise AsrkdError(f"{path}: not an OpenFst file")
    fst_type, off = _read_string(buf, 4)
    arc_type, off = _read_string(buf, off)
    if fst_type != "const" or arc_type != "standard":
        raise AsrkdError(f"{path}: a {fst_type}/{arc_type} FST, expected const/standard")
    _version, _flags, _props, start, ns, na = struct.unpack_from("<iiQqqq", buf, off)
    off += 40
    if len(buf) != off + ns * _STATE.itemsize + na * _ARC.itemsize:
        raise AsrkdError(f"{path}: size does not match its header (aligned or truncated file?)")
    states = np.frombuffer(buf, dtype=_STATE, count=ns, offset=off)
    arcs = np.frombuffer(buf, dtype=_ARC, count=na, offset=off + ns * _STATE.itemsize)
    arc_start = np.empty(ns + 1, dtype=np.int64)
    arc_start[:-1] = states["pos"]
    arc_start[-1] = na
    if ns and (np.any(np.diff(arc_start) != states["narcs"])):
        raise AsrkdError(f"{path}: arcs of its states are not contiguous")
    return FstArrays(int(start), states["final"].astype(np.float32), arc_start,
                     arcs["ilabel"].copy(), arcs["olabel"].copy(), arcs["weight"].copy(),
                     arcs["nextstate"].copy())


def write_const_fst(fst, path: Path | str) -> None:  # noqa: ANN001
    """Write a kaldifst FST as an OpenFst ``const`` file (atomically: temporary name, rename)."""
    import kaldifst

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if not kaldifst.StdConstFst(fst).write(str(tmp)):
        raise AsrkdError(f"could not write {tmp}")
    tmp.replace(path)


def zero_input_labels_above(fst, limit: int, tmp_dir: Path | str):  # noqa: ANN001, ANN201
    """A ``StdVectorFst`` copy of ``fst`` with every input label ``> limit`` replaced by epsilon
    (Kaldi's ``fstrmsymbols`` on the disambiguation symbols).

    Done on the ConstFst bytes (one numpy write over the arc records) instead of a Python loop
    over arcs; the header's property bits are reset to "unknown" (only ``kExpanded`` kept), since
    the relabelling may break stored ones such as "no input epsilons" or "input deterministic".
    """
    import kaldifst

    path = Path(tmp_dir) / "relabel.tmp.fst"
    write_const_fst(fst, path)
    buf = bytearray(path.read_bytes())
    fst_type, off = _read_string(bytes(buf), 4)
    _, off = _read_string(bytes(buf), off)
    props_off = off + 8
    ns, na = struct.unpack_from("<qq", buf, props_off + 16)
    struct.pack_into("<Q", buf, props_off, 1)  # kExpanded; everything else unknown
    arcs = np.frombuffer(buf, dtype=_ARC, count=na, offset=props_off + 32 + ns * _STATE.itemsize)
    il = arcs["ilabel"]  # a view into buf
    il[il > limit] = 0
    path.write_bytes(bytes(buf))
    out = kaldifst.StdVectorFst(kaldifst.StdConstFst.read(str(path)))
    path.unlink()
    return out


def read_symbols(path: Path | str) -> list[str]:
    """An OpenFst text symbol table (``<symbol> <id>`` per line) as a list indexed by id."""
    table: dict[int, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            sym, i = line.split()
            table[int(i)] = sym
    out = [""] * (max(table) + 1 if table else 0)
    for i, s in table.items():
        out[i] = s
    return out
