"""Label stores: ``data/<set>/labels/<name>/`` (DESIGN.md on-disk contract).

A frame store of int32 class ids, shape ``()``, with attrs ``{"num_classes", "lang_fingerprint",
"feats_fingerprint", "source"}``, plus ``failed`` (``<utt> <reason>``, utterances left out; the
file always exists, possibly empty). Aligners also write ``word.ctm``/``unit.ctm`` and
``report.json`` next to the store.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from asrkd.data.datadir import read_table, write_table
from asrkd.errors import AsrkdError
from asrkd.fileio import remove_tree
from asrkd.framestore import FrameStore, write_store

log = logging.getLogger("asrkd.align.labels")


def labels_dir(data_dir: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise AsrkdError(f"bad label set name {name!r}")
    return Path(data_dir) / "labels" / name


def write_labels(
    out_dir: Path,
    items: Iterable[tuple[str, np.ndarray]],
    failed: dict[str, str],
    num_classes: int,
    lang_fingerprint: str,
    feats_fingerprint: str,
    source: str,
    expected_frames: dict[str, int],
) -> FrameStore:
    """Write a label store (replacing any old one). ``items``: (utt, classes (frames,) int)."""
    out_dir = Path(out_dir)
    remove_tree(out_dir)
    out_dir.mkdir(parents=True)
    # The failed table goes first: the store's .done (written last) then covers it.
    if failed:
        write_table(out_dir / "failed", {u: " ".join(r.split()) for u, r in failed.items()})
    else:
        (out_dir / "failed").write_text("")

    def checked() -> Iterable[tuple[str, np.ndarray]]:
        for utt, a in items:
            a = np.asarray(a)
            if a.size and (int(a.min()) < 0 or int(a.max()) >= num_classes):
                raise AsrkdError(f"{utt}: class id outside [0, {num_classes})")
            yield utt, a.astype(np.int32)

    attrs = {"num_classes": int(num_classes), "lang_fingerprint": lang_fingerprint,
             "feats_fingerprint": feats_fingerprint, "source": source}
    store = write_store(out_dir, checked(), np.int32, (), attrs, expected_frames)
    log.info("%s: %d utterances, %d frames labelled, %d failed", out_dir, len(store), store.total_frames, len(failed))
    return store


def read_failed(label_dir: Path) -> dict[str, str]:
    p = Path(label_dir) / "failed"
    return read_table(p) if p.is_file() and p.stat().st_size else {}
