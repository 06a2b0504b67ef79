"""Writer and reader of a soft-target cache directory.

Layout (one frame store per array, see :mod:`asrkd.framestore`)::

    <cache>/meta.json      what training checks: T, combine rule, format, k, teachers (sha256),
                           feature config + fingerprint, label inventory, frame counts, shards
    <cache>/spec.json      the run's parameters, written first (a rerun with other ones is refused)
    <cache>/ids/           top-k: int16/int32 (k,)   ]
    <cache>/probs/         top-k: fp16 (k,); dense: fp16 (C,)   one frame store each, parts = shards
    <cache>/tail/          top-k: fp32 ()           ]
    <cache>/.done          completion marker, written last

Sharding: the sorted utterances are cut into shards of about ``shard_frames`` frames. The cut
depends only on the utterance list and frame counts, never on the number of jobs or ranks, so
each shard is a fixed utterance set and its bytes are deterministic for a given number of
threads per process (a GEMM's rounding can depend on how its rows are split between threads:
measured, one tail value of one utterance 1 ulp apart between 2 threads and 1). Shard ``i`` is computed by
job ``i % world`` (torchrun rank and/or ``--nj`` worker); a shard is complete when every array
store has its part (:func:`asrkd.framestore.part_done`), so a killed run recomputes only the
unfinished shards and a resumed run ends byte-identical to an uninterrupted one (``.done``
markers, which hold a timestamp, excepted). Rank 0 merges the indexes and writes ``meta.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from asrkd.kernels.malloc_tuning import keep_freed_memory
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, is_done, mark_done, read_json, remove_tree
from asrkd.framestore import FrameStore, PartWriter, finalize_store, part_done
from asrkd.distributed import process_barrier, process_rank_world
from asrkd.inference.ensemble import combine_logits
from asrkd.inference.spec import COMBINE_RULES
from asrkd.logs import progress
from asrkd.softtargets.checksums import (
    check_meta_checksum,
    file_checksums,
    frame_counts_fingerprint,
    integrity_problems,
    write_meta_checksum,
)
from asrkd.softtargets.formats import TargetFormat, encode

log = logging.getLogger("asrkd.softtargets.cache")

FORMAT = "asrkd-softtargets"
VERSION = 1
DEFAULT_SHARD_FRAMES = 200_000  # ~17 MB per shard at k=20 (84 bytes per frame)

# A teacher: raw features of one utterance (frames, F) float32 -> logits (frames, C), computed at
# its own precision on its own device (asrkd.inference.forward.Scorer: the model's input
# normalisation, context window and autocast); the cache records spec.precision but knows no models.
TeacherFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CacheSpec:
    """Everything that determines a cache's bytes (and that training checks)."""

    T: float  # temperature
    combine: str  # "mean" | "geometric"
    format: str  # "topk" | "dense"
    k: int  # top-k size (ignored for dense)
    num_classes: int  # label inventory size = teacher output size
    lang_fingerprint: str  # fingerprint of the label inventory (data/lang), "" if unknown
    feature_fingerprint: str  # fingerprint of the feature config of the input features
    feature_config: dict[str, Any] = field(default_factory=dict)
    teachers: tuple[dict[str, str], ...] = ()  # [{"path": ..., "sha256": ...}] per teacher
    precision: str = "fp32"  # teacher inference: "fp32" | "bf16" | "fp16" (autocast; fp16 on GPUs)
    shard_frames: int = DEFAULT_SHARD_FRAMES

    def target_format(self) -> TargetFormat:
        return TargetFormat(self.format, self.num_classes, self.k)

    def check(self) -> None:
        if self.T <= 0:
            raise AsrkdError(f"cache-targets: T must be > 0, got {self.T}")
        if self.combine not in COMBINE_RULES:
            raise AsrkdError(f"cache-targets: combine must be one of {list(COMBINE_RULES)}, got {self.combine!r}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise AsrkdError(f"cache-targets: precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if not self.teachers:
            raise AsrkdError("cache-targets: no teachers")
        self.target_format()

    def to_json(self) -> dict[str, Any]:
        fmt = self.target_format()
        return {
            "T": float(self.T),
            "combine": self.combine,
            "storage": self.format,
            "k": int(self.k) if self.format == "topk" else None,
            "label_inventory": {"num_classes": int(self.num_classes), "fingerprint": self.lang_fingerprint},
            "features": {"fingerprint": self.feature_fingerprint, "config": self.feature_config},
            "teachers": [dict(t) for t in self.teachers],
            "precision": self.precision,
            "shard_frames": int(self.shard_frames),
            "arrays": {n: {"dtype": dt.str, "shape": list(sh)} for n, (dt, sh) in fmt.arrays().items()},
            "bytes_per_frame": fmt.bytes_per_frame(),
        }


def plan_shards(frame_counts: dict[str, int], shard_frames: int) -> list[list[str]]:
    """Cut the sorted utterances into consecutive shards of about ``shard_frames`` frames."""
    shards: list[list[str]] = []
    cur: list[str] = []
    n = 0
    for utt in sorted(frame_counts):
        cur.append(utt)
        n += frame_counts[utt]
        if n >= shard_frames:
            shards.append(cur)
            cur, n = [], 0
    if cur:
        shards.append(cur)
    return shards


def shard_name(i: int) -> str:
    return f"{i:05d}"


def teacher_logits(teachers: Sequence[TeacherFn], feats: torch.Tensor) -> list[torch.Tensor]:
    """Run every teacher on one utterance. feats: (frames, F) -> N x (frames, C) float32."""
    with torch.inference_mode():
        return [t(feats).float() for t in teachers]


def _shard_complete(out: Path, arrays: Iterable[str], name: str) -> bool:
    return all(part_done(out / a, name) for a in arrays)


def prepare_cache_dir(out: Path, spec: CacheSpec, force: bool) -> bool:
    """Create/validate ``out`` before computing (rank 0 only). Returns False when the cache is
    already complete (nothing to do). A directory holding a different run is refused."""
    out = Path(out)
    if force:
        remove_tree(out)
    if is_done(out):
        if read_json(out / "spec.json") != spec.to_json():
            raise AsrkdError(f"{out} holds a complete cache made with other parameters; use --force or another directory")
        problems, _ = integrity_problems(out)  # a complete cache is only skipped when it is intact
        if problems:
            raise AsrkdError(f"{out} is marked complete but damaged: {'; '.join(problems[:3])}; "
                             "rebuild it with --force")
        return False
    spec_path = out / "spec.json"
    if spec_path.exists():
        if read_json(spec_path) != spec.to_json():
            raise AsrkdError(
                f"{out} holds a partial cache made with other parameters (see {spec_path}); "
                "use --force to start over or another directory"
            )
    elif out.exists() and any(out.iterdir()):
        raise AsrkdError(f"{out} exists and is not a soft-target cache; use --force or another directory")
    else:
        atomic_write_json(spec_path, spec.to_json())
    # Temporary files of a killed run (no other job is writing now).
    for p in out.rglob("*"):
        if p.is_file() and (p.name.endswith(".bin.tmp") or (p.name.startswith(".") and ".tmp" in p.name)):
            p.unlink()
    return True


def compute_shards(
    out: Path,
    spec: CacheSpec,
    teachers: Sequence[TeacherFn],
    feats: Callable[[str], np.ndarray],
    frame_counts: dict[str, int],
    job: int = 0,
    num_jobs: int = 1,
) -> int:
    """Compute the shards ``i`` with ``i % num_jobs == job`` that are not complete yet.

    feats(utt) -> (frames, F) model input features. Returns the number of shards computed.
    """
    out = Path(out)
    keep_freed_memory()  # each utterance's (frames, classes) buffers would be page-faulted in anew
    fmt = spec.target_format()
    arrays = fmt.arrays()
    plan = plan_shards(frame_counts, spec.shard_frames)
    todo = [i for i in range(len(plan)) if i % num_jobs == job and not _shard_complete(out, arrays, shard_name(i))]
    skipped = sum(1 for i in range(len(plan)) if i % num_jobs == job) - len(todo)
    if skipped:
        log.info("job %d: %d shard(s) already complete, %d to compute", job, skipped, len(todo))
    for i in progress(todo, total=len(todo), desc=f"soft targets (job {job})"):
        name = shard_name(i)
        writers = {a: PartWriter(out / a, name, dt, sh) for a, (dt, sh) in arrays.items()}
        try:
            for utt in plan[i]:
                x = torch.from_numpy(np.array(feats(utt), dtype=np.float32))  # a writable copy
                logits = teacher_logits(teachers, x)
                probs = combine_logits(logits, spec.T, spec.combine)
                if probs.shape != (frame_counts[utt], spec.num_classes):
                    raise AsrkdError(
                        f"cache-targets: {utt}: teachers give {tuple(probs.shape)}, expected "
                        f"({frame_counts[utt]} frames per utt2num_frames, {spec.num_classes} classes)"
                    )
                for a, arr in encode(probs, fmt).items():
                    writers[a].add(utt, arr)
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        for w in writers.values():
            w.close()
    return len(todo)


def finalize_cache(out: Path, spec: CacheSpec, frame_counts: dict[str, int]) -> "SoftTargetCache":
    """Merge the shards of every array store, check frame counts, write meta.json and .done."""
    out = Path(out)
    fmt = spec.target_format()
    arrays = fmt.arrays()
    plan = plan_shards(frame_counts, spec.shard_frames)
    missing = [shard_name(i) for i in range(len(plan)) if not _shard_complete(out, arrays, shard_name(i))]
    if missing:
        raise AsrkdError(f"{out}: {len(missing)} shard(s) not computed yet, e.g. {missing[:5]}; rerun cache-targets")
    stores = {}
    for a, (dt, sh) in arrays.items():
        stores[a] = finalize_store(out / a, dt, sh, {"soft_targets": a}, expected_frames=frame_counts)
        if set(stores[a].keys()) != set(frame_counts):
            raise AsrkdError(f"{out}/{a}: stored utterances differ from the planned ones")
    sha = {a: {p["name"]: p["sha256"] for p in s.meta["parts"]} for a, s in stores.items()}
    shards = [
        {
            "name": shard_name(i),
            "utts": len(utts),
            "frames": int(sum(frame_counts[u] for u in utts)),
            "sha256": {a: sha[a][shard_name(i)] for a in arrays},
        }
        for i, utts in enumerate(plan)
    ]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **spec.to_json(),
        "num_utts": len(frame_counts),
        "num_frames": int(sum(frame_counts.values())),
        "frame_counts_sha256": frame_counts_fingerprint(frame_counts),
        "shards": shards,
        # Every file's sha256 (parts, indexes, store metas, spec.json): verify-targets finds
        # any corrupted byte; meta.json's own sha256 goes to meta.sha256.
        "checksums": file_checksums(out),
    }
    atomic_write_json(out / "meta.json", meta)
    write_meta_checksum(out)
    mark_done(out)
    return SoftTargetCache(out)


def _job(out: Path, spec: CacheSpec, make_teachers: Callable[[], Sequence[TeacherFn]],
         feats: Callable[[str], np.ndarray], frame_counts: dict[str, int], job: int, num_jobs: int,
         threads: int) -> int:
    """One ``--nj`` worker process (spawned: arguments must be picklable)."""
    torch.set_num_threads(threads)
    return compute_shards(out, spec, make_teachers(), feats, frame_counts, job, num_jobs)


def write_cache(
    out: Path,
    spec: CacheSpec,
    teachers: Sequence[TeacherFn] | None,
    feats: Callable[[str], np.ndarray],
    frame_counts: dict[str, int],
    force: bool = False,
    nj: int = 1,
    make_teachers: Callable[[], Sequence[TeacherFn]] | None = None,
) -> "SoftTargetCache":
    """Compute a whole cache, or this rank's part under torchrun (rank 0 then merges).
    Resumes a killed run. frame_counts: {utt: frames} from utt2num_frames.

    nj > 1 runs nj worker processes on this rank, each loading its own teachers with
    ``make_teachers()`` (picklable, as is ``feats``); nj == 1 uses ``teachers`` in-process.
    """
    spec.check()
    out = Path(out)
    rank, world = process_rank_world()
    todo = prepare_cache_dir(out, spec, force) if rank == 0 else True
    process_barrier()
    if rank != 0:
        todo = not is_done(out)
    if todo:
        if nj <= 1:
            if teachers is None:
                teachers = make_teachers() if make_teachers is not None else None
            if teachers is None:
                raise AsrkdError("write_cache: no teachers")
            n = compute_shards(out, spec, teachers, feats, frame_counts, rank, world)
        else:
            if make_teachers is None:
                raise AsrkdError("write_cache: nj > 1 needs make_teachers")
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, torch.get_num_threads() // nj)
            with ProcessPoolExecutor(nj, mp_context=mp.get_context("spawn")) as ex:
                futs = [ex.submit(_job, out, spec, make_teachers, feats, frame_counts,
                                  rank * nj + j, world * nj, threads) for j in range(nj)]
                n = sum(f.result() for f in futs)
        log.info("rank %d/%d: computed %d shard(s)", rank, world, n)
        process_barrier()
        if rank == 0:
            finalize_cache(out, spec, frame_counts)
        process_barrier()
    return SoftTargetCache(out)


class FeatureReader:
    """Picklable ``utt -> (frames, F)`` reader over a feature store (opened lazily per process)."""

    def __init__(self, feats_dir: Path):
        self.feats_dir = Path(feats_dir)
        self._store: FrameStore | None = None

    def __call__(self, utt: str) -> np.ndarray:
        if self._store is None:
            self._store = FrameStore(self.feats_dir)
        return self._store.read(utt).astype(np.float32, copy=False)  # pread: no mapped pages held

    def __getstate__(self) -> dict[str, Any]:
        return {"feats_dir": self.feats_dir, "_store": None}


class SoftTargetCache:
    """Read-only view of a complete cache: ``cache.arrays(utt)`` -> {name: (frames, ...) memmap}."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        if not is_done(self.directory):
            raise AsrkdError(
                f"soft-target cache {self.directory} is missing or incomplete (no .done); run `asrkd cache-targets`"
            )
        check_meta_checksum(self.directory)
        self.meta: dict[str, Any] = read_json(self.directory / "meta.json")
        if self.meta.get("format") != FORMAT:
            raise AsrkdError(f"{self.directory}: not an asrkd soft-target cache")
        inv = self.meta["label_inventory"]
        self.target_format = TargetFormat(self.meta["storage"], int(inv["num_classes"]), int(self.meta["k"] or 1))
        self.stores = {a: FrameStore(self.directory / a) for a in self.meta["arrays"]}

    @property
    def T(self) -> float:
        return float(self.meta["T"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["label_inventory"]["num_classes"])

    def keys(self) -> list[str]:
        return next(iter(self.stores.values())).keys()

    def frame_counts(self) -> dict[str, int]:
        return next(iter(self.stores.values())).frame_counts()

    def __contains__(self, utt: object) -> bool:
        return utt in next(iter(self.stores.values()))

    def arrays(self, utt: str) -> dict[str, np.ndarray]:
        """{array name: (frames, *row shape)} memory-mapped rows of ``utt``."""
        return {a: s[utt] for a, s in self.stores.items()}
