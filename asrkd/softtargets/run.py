"""``asrkd cache-targets`` as a library call: teacher checkpoints + a data dir -> a cache."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from asrkd.data.datadir import feats_dir, read_num_frames
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.inference.device import resolve_device, resolve_precision
from asrkd.inference.forward import Scorer
from asrkd.inference.model import InferenceModel, check_models, load_model
from asrkd.softtargets.cache import CacheSpec, FeatureReader, SoftTargetCache, write_cache
from asrkd.softtargets.choice import DENSE_MAX_CLASSES, resolve_format

log = logging.getLogger("asrkd.softtargets.run")


def _load_teachers(paths: tuple[str, ...], device: torch.device) -> list[InferenceModel]:
    return [load_model(Path(p), device) for p in paths]


def _scorers(paths: tuple[str, ...], device: torch.device, precision: str) -> list[Scorer]:
    """The teachers as the cache writer's callables (each ``--nj`` worker loads its own)."""
    return [Scorer(m, precision) for m in _load_teachers(paths, device)]


def cache_targets(
    models: list[str],
    data_dir: Path,
    out: Path,
    *,
    T: float,
    combine: str,
    storage: str,
    k: int,
    dense_max_classes: int = DENSE_MAX_CLASSES,
    precision: str = "auto",
    device: str | torch.device = "auto",
    nj: int = 1,
    shard_frames: int | None = None,
    lang_dir: Path | None = None,
    force: bool = False,
) -> SoftTargetCache:
    """Run the teachers ``models`` once over ``data_dir/feats`` on ``device`` (auto|cpu|cuda[:N])
    and write the cache ``out``. ``storage``: topk | dense, or auto | other-than-auto, resolved
    from the teachers' class count and ``dense_max_classes`` (asrkd.softtargets.formats)."""
    data_dir = Path(data_dir)
    dev = resolve_device(device)
    feats = FrameStore(feats_dir(data_dir))
    frame_counts = read_num_frames(data_dir)
    missing = sorted(set(frame_counts) - set(feats.keys()))
    if missing:
        raise AsrkdError(f"{feats.directory} lacks {len(missing)} utterance(s) of utt2num_frames, e.g. {missing[:3]}")
    feats.check_frames(frame_counts)
    teachers = _load_teachers(tuple(models), dev)
    fp = feats.attrs.get("fingerprint") or ""
    num_classes, lang_fp = check_models(teachers, fp)
    if lang_dir is not None:
        from asrkd.lang.tied import load_inventory

        lang = load_inventory(lang_dir)  # data/lang or the tied-state data/lang_tri
        if lang.num_classes != num_classes or (lang_fp and lang.fingerprint != lang_fp):
            raise AsrkdError(f"cache-targets: the teachers' label inventory differs from {lang_dir}")
        lang_fp = lang.fingerprint
    prec = resolve_precision(precision, dev)
    fmt = resolve_format(storage, num_classes, dense_max_classes)
    if fmt != storage:
        log.info("format %s: %s for %d classes (dense up to %d)", storage, fmt, num_classes, dense_max_classes)
    spec = CacheSpec(
        T=float(T), combine=combine, format=fmt, k=int(k), num_classes=num_classes,
        lang_fingerprint=lang_fp, feature_fingerprint=fp,
        feature_config=dict(feats.attrs.get("feature_config") or {}),
        teachers=tuple(t.info for t in teachers), precision=prec,
        **({"shard_frames": int(shard_frames)} if shard_frames else {}),
    )
    log.info("%d teacher(s) on %s, %d utterances, %d frames, T=%g %s %s%s, %s", len(teachers), dev,
             len(frame_counts), sum(frame_counts.values()), T, combine, fmt,
             f" k={k}" if fmt == "topk" else "", spec.precision)
    return write_cache(
        out, spec, [Scorer(t, prec) for t in teachers] if nj <= 1 else None, FeatureReader(feats.directory),
        frame_counts, force=force, nj=nj, make_teachers=functools.partial(_scorers, tuple(models), dev, prec),
    )
