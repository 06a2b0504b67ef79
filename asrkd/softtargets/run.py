"""``asrkd cache-targets`` as a library call: teacher checkpoints + a data dir -> a cache."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.softtargets.cache import CacheSpec, FeatureReader, SoftTargetCache, write_cache
from asrkd.softtargets.teachers import check_teachers, load_teacher

log = logging.getLogger("asrkd.softtargets.run")


def resolve_precision(precision: str) -> str:
    """"auto": bf16 autocast where the CPU computes bf16 natively (AMX/AVX512-BF16), else fp32."""
    if precision == "auto":
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    if precision not in ("bf16", "fp32"):
        raise AsrkdError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    return precision


def _load_teachers(paths: tuple[str, ...]) -> list:
    return [load_teacher(Path(p)) for p in paths]


def cache_targets(
    models: list[str],
    data_dir: Path,
    out: Path,
    *,
    T: float,
    combine: str,
    storage: str,
    k: int,
    precision: str = "auto",
    nj: int = 1,
    shard_frames: int | None = None,
    lang_dir: Path | None = None,
    force: bool = False,
) -> SoftTargetCache:
    """Run the teachers ``models`` once over ``data_dir/feats`` and write the cache ``out``."""
    data_dir = Path(data_dir)
    feats = FrameStore(data_dir / "feats")
    frame_counts = {u: int(n) for u, n in read_table(data_dir / "utt2num_frames").items()}
    missing = sorted(set(frame_counts) - set(feats.keys()))
    if missing:
        raise AsrkdError(f"{data_dir}/feats lacks {len(missing)} utterance(s) of utt2num_frames, e.g. {missing[:3]}")
    feats.check_frames(frame_counts)
    teachers = _load_teachers(tuple(models))
    fp = feats.attrs.get("fingerprint") or ""
    num_classes, lang_fp = check_teachers(teachers, fp)
    if lang_dir is not None:
        from asrkd.lang.tied import load_inventory

        lang = load_inventory(lang_dir)  # data/lang or the tied-state data/lang_tri
        if lang.num_classes != num_classes or (lang_fp and lang.fingerprint != lang_fp):
            raise AsrkdError(f"cache-targets: the teachers' label inventory differs from {lang_dir}")
        lang_fp = lang.fingerprint
    spec = CacheSpec(
        T=float(T), combine=combine, format=storage, k=int(k), num_classes=num_classes,
        lang_fingerprint=lang_fp, feature_fingerprint=fp,
        feature_config=dict(feats.attrs.get("feature_config") or {}),
        teachers=tuple(t.info for t in teachers), precision=resolve_precision(precision),
        **({"shard_frames": int(shard_frames)} if shard_frames else {}),
    )
    log.info("%d teacher(s), %d utterances, %d frames, T=%g %s %s%s, %s", len(teachers), len(frame_counts),
             sum(frame_counts.values()), T, combine, storage, f" k={k}" if storage == "topk" else "", spec.precision)
    return write_cache(
        out, spec, teachers if nj <= 1 else None, FeatureReader(data_dir / "feats"), frame_counts,
        force=force, nj=nj, make_teachers=functools.partial(_load_teachers, tuple(models)),
    )
