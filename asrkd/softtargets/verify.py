"""Integrity and consistency checks of a soft-target cache (``asrkd verify-targets``).

Integrity: ``meta.json`` lists the sha256 of every file of the cache (each array store's parts,
part indexes, ``index.tsv`` and ``meta.json``, and ``spec.json``), and ``meta.sha256`` holds the
sha256 of ``meta.json`` itself, so any corrupted byte of any file is detected (``.done`` markers,
which only carry a timestamp, excepted). Consistency: the cached utterances and frame counts
must equal ``utt2num_frames`` of the data, the feature fingerprint that of ``<data>/feats``, and
the label inventory that of ``data/lang`` or of a label store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asrkd.data.datadir import feats_dir, read_num_frames
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.softtargets.cache import SoftTargetCache
from asrkd.softtargets.checksums import frame_counts_fingerprint, integrity_problems


def verify_cache(
    directory: Path,
    data_dir: Path | None = None,
    lang_dir: Path | None = None,
    labels_dir: Path | None = None,
) -> list[str]:
    """Return every problem found (empty list = intact and consistent)."""
    d = Path(directory)
    if not d.is_dir():
        return [f"{d}: no such cache directory"]
    problems, meta = integrity_problems(d)
    if meta is None:
        return problems
    counts: dict[str, int] | None = None
    try:
        counts = SoftTargetCache(d).frame_counts()
    except (AsrkdError, OSError, ValueError, KeyError) as e:
        problems.append(f"{d}: cannot open ({e})")
    if counts is not None and meta.get("frame_counts_sha256") != frame_counts_fingerprint(counts):
        problems.append(f"{d}: stored frame counts disagree with meta.json")
    if data_dir is not None:
        problems += _check_data(meta, counts, Path(data_dir))
    inv = meta.get("label_inventory", {})
    if lang_dir is not None:
        from asrkd.lang.tied import load_inventory

        lang = load_inventory(lang_dir)  # data/lang or the tied-state data/lang_tri
        if lang.num_classes != inv.get("num_classes"):
            problems.append(f"labels: cache has {inv.get('num_classes')} classes, {lang_dir} {lang.num_classes}")
        if inv.get("fingerprint") and lang.fingerprint != inv["fingerprint"]:
            problems.append(f"labels: cache inventory fingerprint differs from {lang_dir}")
    if labels_dir is not None:
        attrs = FrameStore(Path(labels_dir)).attrs
        if attrs.get("num_classes") != inv.get("num_classes"):
            problems.append(f"labels: cache has {inv.get('num_classes')} classes, {labels_dir} {attrs.get('num_classes')}")
        if inv.get("fingerprint") and attrs.get("lang_fingerprint") not in (None, inv["fingerprint"]):
            problems.append(f"labels: cache inventory fingerprint differs from {labels_dir}")
        fp = meta.get("features", {}).get("fingerprint")
        if attrs.get("feats_fingerprint") not in (None, fp):
            problems.append(f"features: cache fingerprint differs from that of {labels_dir}")
    return problems


def _check_data(meta: dict[str, Any], counts: dict[str, int] | None, data_dir: Path) -> list[str]:
    problems = []
    try:
        expected = read_num_frames(data_dir)
    except AsrkdError as e:
        return [str(e)]
    if counts is not None:
        missing = sorted(set(expected) - set(counts))
        extra = sorted(set(counts) - set(expected))
        if missing:
            problems.append(f"frame counts: {len(missing)} utterance(s) of {data_dir} not cached, e.g. {missing[:3]}")
        if extra:
            problems.append(f"frame counts: {len(extra)} cached utterance(s) not in {data_dir}, e.g. {extra[:3]}")
        bad = sorted(u for u in set(counts) & set(expected) if counts[u] != expected[u])
        if bad:
            sample = ", ".join(f"{u}: {counts[u]} vs {expected[u]}" for u in bad[:3])
            problems.append(f"frame counts: {len(bad)} utterance(s) differ from {data_dir}/utt2num_frames: {sample}")
    feats_meta = feats_dir(data_dir) / "meta.json"
    if feats_meta.is_file():
        attrs = json.loads(feats_meta.read_text(encoding="utf-8")).get("attrs", {})
        fp = meta.get("features", {}).get("fingerprint")
        if attrs.get("fingerprint") != fp:
            problems.append(f"features: cache fingerprint {str(fp)[:12]}... differs from {data_dir}/feats "
                            f"({str(attrs.get('fingerprint'))[:12]}...)")
    else:
        problems.append(f"features: {feats_meta} missing, cannot compare the feature fingerprint")
    return problems
