"""``compute-feats``: a data directory's audio -> feature frame store + utt2num_frames + CMVN.

Outputs (DESIGN.md on-disk contract)::

    <data>/feats/            frame store float32 (F,), attrs {feature_config, fingerprint}
    <data>/feats/config.yaml the resolved FeatureConfig
    <data>/feats/skipped     <utt> <reason> for inputs skipped with --skip-bad (absent if none)
    <data>/utt2num_frames    frames per stored utterance (= num_frames(resampled length))
    <data>/utt2dur           seconds per stored utterance
    <data>/cmvn.json         global and per-speaker statistics

Atomicity and resumption: the sorted utterances are split into ``nj`` contiguous jobs; job j
writes part ``j`` of the store and, just before closing it, ``job-<j>.json`` (its skipped
inputs, sample counts and CMVN sums). A part is complete when its index exists, so a killed run
leaves no ``.done``; a rerun with the same plan (``plan.json``: fingerprint, job split and
the data directory's audio entries) keeps the finished parts and redoes the rest, any other
rerun starts over. The store's ``.done`` is written last of all outputs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from asrkd.data.audio import load_audio
from asrkd.features.cmvn import CMVN_FILE, CmvnAccumulator, write_cmvn
from asrkd.config import save_config, to_dict
from asrkd.data.datadir import (
    UTT2NUM_FRAMES, DataDir, Segment, feats_dir, read_data_dir, read_table, write_num_frames, write_table,
)
from asrkd.errors import AsrkdError
from asrkd.features.fbank import FeatureConfig, compute_fbank
from asrkd.fileio import atomic_write_json, is_done, read_json, remove_tree, sha256_strings
from asrkd.framestore import FrameStore, PartWriter, finalize_store, part_done
from asrkd.framing import num_frames
from asrkd.logs import progress

log = logging.getLogger("asrkd.features.compute")


@dataclass(frozen=True)
class _Job:
    """One worker's share of the utterances (contiguous in sorted order) and how to treat them."""

    index: int
    out_dir: Path
    cfg: FeatureConfig
    items: tuple[tuple[str, str, str, Segment | None], ...]  # (utt, speaker, wav spec, segment)
    skip_bad: bool
    allow_pipes: bool


@dataclass
class FeatsSummary:
    """What a compute-feats run produced (or found complete)."""

    num_utts: int
    num_frames: int
    num_skipped: int
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)
    reused: bool = False  # True when the store was already complete and nothing was done


def _featurize_one(job: _Job, utt: str, spec: str, seg: Segment | None) -> tuple[np.ndarray, int]:
    """``(feats (frames, F), num_samples)`` of one utterance; AsrkdError naming it on bad input."""
    try:
        samples = load_audio(spec, job.cfg.sample_rate, seg, allow_pipes=job.allow_pipes)
    except AsrkdError as e:
        raise AsrkdError(f"utterance {utt}: {e}") from None
    if num_frames(len(samples), job.cfg.frame_spec()) == 0:
        ms = 1000.0 * len(samples) / job.cfg.sample_rate
        raise AsrkdError(
            f"utterance {utt}: audio too short for one frame ({ms:.1f} ms < {job.cfg.frame_length_ms} ms window)"
        )
    return compute_fbank(samples, job.cfg), len(samples)


def iter_job(job: _Job) -> Iterator[str]:
    """Write part ``job.index`` (+ ``job-<index>.json``) of the store in ``job.out_dir``,
    yielding each utterance id as it is done (for progress displays)."""
    name = str(job.index)
    if part_done(job.out_dir, name):
        return
    cmvn = CmvnAccumulator(job.cfg.dim)
    skipped: dict[str, str] = {}
    num_samples: dict[str, int] = {}
    with PartWriter(job.out_dir, name, np.float32, (job.cfg.dim,)) as writer:
        for utt, spk, spec, seg in job.items:
            try:
                feats, num_samples[utt] = _featurize_one(job, utt, spec, seg)
            except AsrkdError as e:
                if not job.skip_bad:
                    raise
                skipped[utt] = str(e)
                log.warning("skipping %s", e)
            else:
                writer.add(utt, feats)
                cmvn.add(spk, feats)
            yield utt
        # Written before the part's index (which marks the part complete): a complete part
        # always has its job file.
        atomic_write_json(
            job.out_dir / f"job-{name}.json",
            {"skipped": skipped, "num_samples": num_samples, "cmvn": cmvn.to_json()["speakers"]},
        )


_counter: Any = None  # the shared progress counter, in worker processes


def _init_worker(counter: Any, log_level: int) -> None:
    from asrkd.logs import setup_logging

    global _counter
    _counter = counter  # shared memory must reach workers at start-up, not through submit()
    setup_logging()
    logging.getLogger("asrkd").setLevel(log_level)


def _worker(job: _Job) -> None:
    for _ in iter_job(job):
        with _counter.get_lock():
            _counter.value += 1


def _check_audio_entries(data: DataDir, data_dir: Path) -> None:
    """Every utterance of utt2spk has its audio: a segment (when ``segments`` exists) and a
    wav.scp entry for its recording; AsrkdError naming the first few that do not."""
    if data.segments is not None:
        missing = [u for u in data.utts if u not in data.segments]
        if missing:
            raise AsrkdError(f"{data_dir}: {len(missing)} utterance(s) of utt2spk have no line in segments, "
                             f"e.g. {missing[:3]} (run `asrkd validate-data {data_dir}`)")
    missing = [u for u in data.utts if data.recording_of(u) not in data.wav]
    if missing:
        raise AsrkdError(f"{data_dir}: {len(missing)} utterance(s) of utt2spk have no recording in wav.scp, e.g. "
                         + ", ".join(f"{u} ({data.recording_of(u)!r})" for u in missing[:3])
                         + f" (run `asrkd validate-data {data_dir}`)")


def _plan_id(cfg: FeatureConfig, data: DataDir, nj: int) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one to reuse its finished parts."""
    entries = []
    for utt in data.utts:
        seg = data.segment_of(utt)
        entries.append(f"{utt} {data.utt2spk[utt]} {data.wav[data.recording_of(utt)]} {seg}")
    return {"fingerprint": cfg.fingerprint(), "nj": nj, "inputs_sha256": sha256_strings(entries)}


def _jobs(cfg: FeatureConfig, data: DataDir, out_dir: Path, nj: int, skip_bad: bool, allow_pipes: bool) -> list[_Job]:
    items = [(u, data.utt2spk[u], data.wav[data.recording_of(u)], data.segment_of(u)) for u in data.utts]
    bounds = np.linspace(0, len(items), nj + 1).round().astype(int)
    return [
        _Job(j, out_dir, cfg, tuple(items[bounds[j]: bounds[j + 1]]), skip_bad, allow_pipes)
        for j in range(nj)
    ]


def _run_parallel(jobs: list[_Job], total: int) -> None:
    """Run jobs in ``len(jobs)`` processes with one shared progress display."""
    # spawn, not fork: a parent that used torch/OpenMP threads (tests, notebooks) cannot fork
    # safely; the feature path imports no torch, so workers start in about a second.
    ctx = mp.get_context("spawn")
    counter = ctx.Value("l", 0)
    level = logging.getLogger("asrkd").getEffectiveLevel()
    with ProcessPoolExecutor(len(jobs), mp_context=ctx, initializer=_init_worker, initargs=(counter, level)) as pool:
        futures = [pool.submit(_worker, job) for job in jobs]

        def ticks() -> Iterator[None]:
            seen = 0
            while True:
                done, _ = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
                now = counter.value
                for _ in range(now - seen):
                    yield None
                seen = now
                if len(done) == len(futures) or any(f.exception() for f in done):
                    return

        for _ in progress(ticks(), total=total, desc="compute-feats"):
            pass
        for f in futures:
            if f.done() and f.exception() is not None:
                for g in futures:
                    g.cancel()
                raise f.exception()  # type: ignore[misc]


def _check_complete(out_dir: Path, cfg: FeatureConfig, plan: dict[str, Any]) -> FeatsSummary | None:
    """If ``out_dir`` holds a complete store for this config and input, its summary; if it holds
    one for another config or input, AsrkdError; if incomplete, None."""
    if not is_done(out_dir):
        return None
    store = FrameStore(out_dir)
    if store.attrs.get("fingerprint") != plan["fingerprint"]:
        raise AsrkdError(
            f"{out_dir} holds features of a different feature config (fingerprint "
            f"{str(store.attrs.get('fingerprint'))[:12]} vs {plan['fingerprint'][:12]}); "
            "rerun with --force to recompute them"
        )
    if store.attrs.get("inputs_sha256") != plan["inputs_sha256"]:
        raise AsrkdError(
            f"{out_dir} was computed from different audio entries (wav.scp/segments/utt2spk "
            "changed since); rerun with --force to recompute the features"
        )
    skipped = _read_skipped(out_dir)
    return FeatsSummary(len(store), store.total_frames, len(skipped), 0.0, skipped, reused=True)


def _read_skipped(out_dir: Path) -> dict[str, str]:
    path = out_dir / "skipped"
    if not path.is_file():
        return {}
    return read_table(path)


def compute_feats(
    data_dir: Path,
    cfg: FeatureConfig = FeatureConfig(),
    nj: int = 1,
    skip_bad: bool = False,
    allow_pipes: bool = False,
    force: bool = False,
) -> FeatsSummary:
    """Featurise every utterance of ``data_dir`` (see the module docstring for the outputs).

    ``nj > 1`` runs that many single-threaded worker processes, each writing its own
    part; ``nj == 1`` runs in this process. Bad inputs raise AsrkdError naming the utterance,
    or with ``skip_bad`` are skipped, logged and listed in ``feats/skipped``.
    """
    t0 = time.monotonic()
    data_dir = Path(data_dir)
    cfg.check()
    data = read_data_dir(data_dir)
    if not data.utts:
        raise AsrkdError(f"{data_dir}: no utterances (utt2spk is empty)")
    _check_audio_entries(data, data_dir)
    out_dir = feats_dir(data_dir)
    nj = max(1, min(int(nj), len(data.utts)))
    plan = _plan_id(cfg, data, nj)
    if force:
        remove_tree(out_dir)
    else:
        summary = _check_complete(out_dir, cfg, plan)
        if summary is not None:
            log.info("%s is complete (%d utterances, %d frames); skipping (use --force to redo)",
                     out_dir, summary.num_utts, summary.num_frames)
            return summary
        plan_path = out_dir / "plan.json"
        if out_dir.exists() and (not plan_path.is_file() or read_json(plan_path) != plan):
            log.info("%s holds an unfinished run of another plan; starting over", out_dir)
            remove_tree(out_dir)
    # The tables that describe the store go until the new store is complete (utt2dur may come
    # from data preparation and stays).
    for stale in (data_dir / UTT2NUM_FRAMES, data_dir / CMVN_FILE):
        stale.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "plan.json", plan)

    jobs = _jobs(cfg, data, out_dir, nj, skip_bad, allow_pipes)
    todo = [j for j in jobs if not part_done(out_dir, str(j.index))]
    if len(todo) < len(jobs):
        log.info("resuming: %d of %d parts already complete", len(jobs) - len(todo), len(jobs))
    if nj == 1:
        for job in todo:
            for _ in progress(iter_job(job), total=len(job.items), desc="compute-feats"):
                pass
    elif todo:
        _run_parallel(todo, sum(len(j.items) for j in todo))
    return _finalize(data_dir, out_dir, cfg, plan, jobs, time.monotonic() - t0)


def _finalize(
    data_dir: Path, out_dir: Path, cfg: FeatureConfig, plan: dict[str, Any], jobs: list[_Job], seconds: float
) -> FeatsSummary:
    cmvn = CmvnAccumulator(cfg.dim)
    skipped: dict[str, str] = {}
    num_samples: dict[str, int] = {}
    for job in jobs:
        info = read_json(out_dir / f"job-{job.index}.json")
        skipped.update(info["skipped"])
        num_samples.update(info["num_samples"])
        for spk, st in info["cmvn"].items():
            part = CmvnAccumulator(cfg.dim)
            part.speakers[spk] = [st["count"], np.asarray(st["sum"]), np.asarray(st["sumsq"])]
            cmvn.merge(part)
    if not num_samples:
        raise AsrkdError(f"{data_dir}: every utterance was skipped as bad input; nothing to store")
    # The store's row counts are checked against the one frame-count function.
    expected = {u: num_frames(n, cfg.frame_spec()) for u, n in num_samples.items()}
    write_num_frames(data_dir, expected)
    write_table(data_dir / "utt2dur", {u: f"{n / cfg.sample_rate:.4f}" for u, n in num_samples.items()})
    write_cmvn(data_dir, cmvn.to_json())
    if skipped:
        write_table(out_dir / "skipped", {u: r.replace("\n", " ") for u, r in skipped.items()})
        log.warning("skipped %d bad utterance(s), listed in %s", len(skipped), out_dir / "skipped")
    else:
        (out_dir / "skipped").unlink(missing_ok=True)
    save_config(cfg, out_dir / "config.yaml")
    attrs = {"feature_config": to_dict(cfg), "fingerprint": plan["fingerprint"], "inputs_sha256": plan["inputs_sha256"]}
    store = finalize_store(out_dir, np.float32, (cfg.dim,), attrs, expected_frames=expected)
    summary = FeatsSummary(len(store), store.total_frames, len(skipped), seconds, skipped)
    log.info("%s: %d utterances, %d frames (%.2f h), %d skipped, in %.1f s",
             out_dir, summary.num_utts, summary.num_frames, summary.num_frames * cfg.frame_shift_ms / 3.6e6,
             summary.num_skipped, seconds)
    return summary

