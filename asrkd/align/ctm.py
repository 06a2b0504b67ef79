"""Frame labels -> unit and word segments -> CTM files (and back).

CTM lines are ``<utt> 1 <start_s> <dur_s> <token>`` (4 decimals: frame boundaries fall on
2.5 ms multiples, 10 i + 7.5 ms). Segment times follow the one convention of
:mod:`asrkd.framing`: a segment of frames ``[a, b)`` runs from ``boundary_time(a)`` to
``boundary_time(b)`` (midway between neighbouring frame centres).

Units are recovered from a class sequence alone (context-independent classes): a new unit starts
where the unit changes or the state index goes down (every HMM is left to right), so repeated
units (``L L``) split correctly. An aligner's own output is cut by its graph path instead
(:func:`path_segments`), which also holds for tied states that several units share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asrkd.align.contexts import segment_starts
from asrkd.align.graph import Graph
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_text
from asrkd.framing import FrameSpec, boundary_time
from asrkd.lang.inventory import Lang

Segment = tuple[str, float, float]  # (token, start_s, end_s)


def unit_segments(classes: np.ndarray, lang: Lang) -> list[tuple[int, int, int]]:
    """``classes: (frames,)`` -> ``[(unit_id, first_frame, end_frame_exclusive), ...]``."""
    c = np.asarray(classes, dtype=np.int64)
    if c.size == 0:
        return []
    if int(c.max()) >= lang.num_classes or int(c.min()) < 0:
        raise AsrkdError(f"class id out of range for {lang.directory} ({lang.num_classes} classes)")
    units = lang.class_unit[c]
    states = lang.class_state[c]
    starts = np.flatnonzero(segment_starts(units, states))
    ends = np.append(starts[1:], c.size)
    return [(int(units[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def path_segments(graph: Graph, nodes: np.ndarray, silence_unit: int) -> list[tuple[int, int, int]]:
    """An alignment's graph path ``nodes: (T,)`` -> ``[(unit_id, first_frame, end_frame_exclusive)]``:
    one segment per unit position or silence the path passes through."""
    nodes = np.asarray(nodes, dtype=np.int64)
    if nodes.size == 0:
        return []
    assert graph.node_sil is not None
    pos = graph.node_unit[nodes]
    key = np.where(pos >= 0, pos, -2 - graph.node_sil[nodes])  # unit position, or -2 - silence slot
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    ends = np.append(starts[1:], nodes.size)
    ids = [graph.unit_ids[p] if p >= 0 else silence_unit for p in pos[starts]]
    return [(int(u), int(a), int(b)) for u, a, b in zip(ids, starts, ends)]


def word_segments(
    units: list[tuple[int, int, int]], lang: Lang, words: list[str], words_units: list[list[int]]
) -> list[tuple[str, int, int]]:
    """Group non-silence unit segments into the transcript's words.

    ``words_units``: unit ids per word (``lang.transcript_units``). Raises AsrkdError if the
    aligned unit sequence is not the transcript's (labels from another inventory or text).
    """
    speech = [u for u in units if u[0] != lang.silence_unit]
    expected = [u for wu in words_units for u in wu]
    if [u[0] for u in speech] != expected:
        raise AsrkdError("aligned units do not match the transcript")
    out, i = [], 0
    for w, wu in zip(words, words_units):
        seg = speech[i : i + len(wu)]
        out.append((w, seg[0][1], seg[-1][2]))
        i += len(wu)
    return out


def to_times(segs: list[tuple[str, int, int]], spec: FrameSpec = FrameSpec()) -> list[Segment]:
    return [(tok, float(boundary_time(a, spec)), float(boundary_time(b, spec))) for tok, a, b in segs]


def write_ctm(path: Path, ctm: dict[str, list[Segment]]) -> None:
    lines = []
    for utt in sorted(ctm):
        for tok, start, end in ctm[utt]:
            lines.append(f"{utt} 1 {start:.4f} {end - start:.4f} {tok}\n")
    atomic_write_text(Path(path), "".join(lines))


def read_ctm(path: Path) -> dict[str, list[Segment]]:
    """Read a CTM file -> {utt: [(token, start_s, end_s)]} in time order."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"CTM file not found: {path}")
    out: dict[str, list[Segment]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith(";;"):
            continue
        parts = line.split()
        if len(parts) < 5:
            raise AsrkdError(f"{path}:{lineno}: expected '<utt> <chan> <start> <dur> <token>', got {line!r}")
        try:
            start, dur = float(parts[2]), float(parts[3])
        except ValueError:
            raise AsrkdError(f"{path}:{lineno}: bad times in {line!r}") from None
        out.setdefault(parts[0], []).append((parts[4], start, start + dur))
    for segs in out.values():
        segs.sort(key=lambda s: s[1])
    return out
