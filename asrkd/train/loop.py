"""The one training loop (teachers and students alike), readable top to bottom.

:func:`train` = open data -> build or resume model/optimiser -> for each epoch: steps over
frame-randomised batches (checkpointing every ``checkpoint_every_steps``), dev metrics, lr
schedule, keep-best, early stopping -> ``final.pt`` (the best model) + completion marker.

Resume: ``last.pt`` holds everything a run depends on (weights, optimiser, schedule, RNG,
epoch/step position, the epoch's running sums), so a run killed at any point and rerun with
the same arguments reaches the same result as an uninterrupted one.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from asrkd.config import save_config, to_dict
from asrkd.data.labelled import open_labelled_frames
from asrkd.errors import AsrkdError
from asrkd.features.inputnorm import training_input_norm
from asrkd.fileio import atomic_write_json, atomic_write_text, clear_done, mark_done
from asrkd.inference.device import autocast, resolve_device, resolve_precision
from asrkd.inference.model import load_checkpoint
from asrkd.logs import add_log_file, progress
from asrkd.models import build_model, count_params, model_config_dict, with_num_classes
from asrkd.kernels.threads import match_numba_threads
from asrkd.train.checkpoint import save_checkpoint
from asrkd.train.config import TrainConfig
from asrkd.train.data import FrameLoader, SoftSource, eval_batches
from asrkd.distributed import all_reduce_sum, barrier, init_distributed
from asrkd.train.schedule import LRSchedule
from asrkd.train.status import training_complete
from asrkd.train.step import Stepper, make_optimizer

log = logging.getLogger("asrkd.train")

LAST, BEST, FINAL, METRICS = "last.pt", "best.pt", "final.pt", "metrics.json"


@dataclass
class TrainData:
    """Where the data of a run comes from (soft targets: the distillation issue's source)."""

    feats: Path
    labels: Path
    dev_feats: Path
    dev_labels: Path
    soft: SoftSource | None = None
    dev_soft: SoftSource | None = None


@dataclass
class EpochStats:
    """Running sums of one epoch (saved mid-epoch so a resumed epoch reports the same numbers)."""

    loss_sum: float = 0.0
    correct: int = 0
    frames: int = 0
    steps: int = 0
    seconds: float = 0.0
    wait_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class RunState:
    epoch: int = 0  # current epoch
    step: int = 0  # steps done in the current epoch
    global_step: int = 0
    nonfinite: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_acc: float = -1.0
    stats: EpochStats = field(default_factory=EpochStats)


def evaluate_frames(
    model: torch.nn.Module, batches: Any, autocast: Any, cfg: TrainConfig, device: torch.device
) -> tuple[float, int, int]:
    """(loss sum, correct frames, frames) of ``model`` over ``batches`` (hard-label CE)."""
    loss_sum, correct, frames = 0.0, 0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad(), autocast():
        for b in batches:
            b = b.to(device)
            logits = model(b.x).float()
            loss_sum += float(torch.nn.functional.cross_entropy(logits, b.labels, reduction="sum"))
            correct += int((logits.argmax(-1) == b.labels).sum())
            frames += b.size
    model.train(was_training)
    return loss_sum, correct, frames


def _rng_states(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This process's RNG states (dropout): CPU, and the GPU's when training on one."""
    return torch.get_rng_state(), (torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _checkpoint_state(cfg: TrainConfig, model: torch.nn.Module, cmvn: Any, fingerprints: dict[str, Any],
                      metrics: list[dict[str, Any]], floor: Any = None) -> dict[str, Any]:
    return {
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model_config": model_config_dict(model.cfg),
        "train_config": to_dict(cfg),
        "cmvn": cmvn,
        "noise_floor": None if floor is None else [float(v) for v in floor],
        "fingerprints": fingerprints,
        "metrics": list(metrics),
    }


def _init_weights(model: torch.nn.Module, model_cfg: Any, path: Path) -> None:
    """Load the weights of checkpoint ``path`` into ``model`` (built from ``model_cfg``).

    The architecture must match (dropout may differ: it has no weights)."""
    if not path.is_file():
        raise AsrkdError(f"init_from: no checkpoint {path}")
    ck = load_checkpoint(path)
    ours = {k: v for k, v in model_config_dict(model_cfg).items() if k != "dropout"}
    theirs = {k: v for k, v in (ck.get("model_config") or {}).items() if k != "dropout"}
    if theirs != ours:
        raise AsrkdError(f"init_from {path}: its model {theirs} differs from this run's {ours}")
    model.load_state_dict(ck["model"])
    log.info("initialised the weights from %s", path)


def train(cfg: TrainConfig, data: TrainData, out: Path, force: bool = False,
          device: str | torch.device = "auto") -> list[dict[str, Any]]:
    """Train one model into ``out`` (see the module docstring) on ``device`` (auto|cpu|cuda[:N]);
    returns the per-epoch metrics."""
    out = Path(out)
    if training_complete(out, force):
        return load_checkpoint(out / FINAL)["metrics"]
    threads = torch.get_num_threads()
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    numba_threads = match_numba_threads(torch.get_num_threads())
    try:
        return _train(cfg, data, out, force, resolve_device(device))
    finally:
        torch.set_num_threads(threads)  # the caller's process keeps its own setting
        match_numba_threads(numba_threads)
        _remove_log_file(out / "log")


def _remove_log_file(path: Path) -> None:
    """Detach the run's log file (a process training several models logs each to its own dir)."""
    root = logging.getLogger("asrkd")
    for h in list(root.handlers):
        if getattr(h, "baseFilename", None) == str(path.resolve()):
            root.removeHandler(h)
            h.close()


def _train(cfg: TrainConfig, data: TrainData, out: Path, force: bool, device: torch.device) -> list[dict[str, Any]]:
    dist_info = init_distributed(device)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device(dist_info.device)  # one GPU per rank
    # for dev metrics; the Stepper has its own
    dev_autocast = functools.partial(autocast, resolve_precision(cfg.precision, device), device)

    # ---- data -----------------------------------------------------------------------------
    feats, labels, utts = open_labelled_frames(data.feats, data.labels)
    dev_feats, dev_labels, dev_utts = open_labelled_frames(data.dev_feats, data.dev_labels)
    num_classes = int(labels.attrs["num_classes"])
    if int(dev_labels.attrs["num_classes"]) != num_classes or (
        labels.attrs.get("lang_fingerprint") != dev_labels.attrs.get("lang_fingerprint")
    ):
        raise AsrkdError(f"dev labels {data.dev_labels} use a different label inventory than {data.labels}")
    if feats.attrs.get("fingerprint") != dev_feats.attrs.get("fingerprint"):
        raise AsrkdError(f"dev features {data.dev_feats} were computed with a different feature config")
    cfg_model = with_num_classes(cfg.model, num_classes)
    if feats.shape != (cfg_model.feat_dim,):
        raise AsrkdError(f"features are {feats.shape}, model.feat_dim is {cfg_model.feat_dim}")
    cmvn, floor = training_input_norm(feats, cfg.data.cmvn, cfg.data.noise_floor_percentile)
    fingerprints = {"feats": feats.attrs.get("fingerprint"), "lang": labels.attrs.get("lang_fingerprint"),
                    "labels_source": labels.attrs.get("source")}
    loader = FrameLoader(
        feats, labels, utts, cfg_model.left_context, cfg_model.right_context, cfg.data.batch_size, cmvn,
        cfg.data.chunk_frames, cfg.seed, dist_info.rank, dist_info.world, cfg.data.prefetch, data.soft,
        floor=floor, device=device, chunk_bytes=cfg.data.chunk_bytes,
    )
    dev_shard = dev_utts[dist_info.rank :: dist_info.world]

    # ---- model, optimiser, schedule: fresh or resumed --------------------------------------
    torch.manual_seed(cfg.seed)
    model = build_model(cfg_model).to(device)
    optimizer = make_optimizer(list(model.parameters()), cfg)
    steps_per_epoch = loader.steps_per_epoch(0)
    schedule = LRSchedule(cfg.schedule, cfg.optim, steps_per_epoch * cfg.max_epochs)
    state = RunState()
    resumed = None
    if (out / LAST).is_file() and not force:
        ck = resumed = load_checkpoint(out / LAST)
        # fast_step is no part of the run: either step path resumes the other's checkpoints (and
        # runs checkpointed before the setting existed resume too)
        if {**ck["train_config"], "fast_step": cfg.fast_step} != to_dict(cfg):
            raise AsrkdError(
                f"{out} holds a run with a different config; use --force to start over or another --out"
            )
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        schedule.load_state_dict(ck["schedule"])
        if len(ck["rng"]["torch"]) != dist_info.world:
            raise AsrkdError(f"{out} was trained with {len(ck['rng']['torch'])} process(es); resume it with as many")
        torch.set_rng_state(ck["rng"]["torch"][dist_info.rank])
        if device.type == "cuda" and ck["rng"].get("cuda"):
            torch.cuda.set_rng_state(ck["rng"]["cuda"][dist_info.rank], device)
        p = ck["position"]
        state = RunState(p["epoch"], p["step"], p["global_step"], ck["nonfinite"], ck["metrics"],
                         ck["best"]["epoch"], ck["best"]["acc"], EpochStats(**ck["epoch_stats"]))
        log.info("resuming %s at epoch %d step %d", out, state.epoch, state.step)
    else:
        if cfg.init_from:
            _init_weights(model, cfg_model, Path(cfg.init_from))
        torch.manual_seed(cfg.seed * 1000 + dist_info.rank)  # dropout streams differ per rank
    if dist_info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        clear_done(out)
        add_log_file(out / "log")
        save_config(cfg, out / "config.yaml")
        atomic_write_text(out / "command", " ".join(sys.argv) + "\n")
        log.info("model %s: %d parameters, %d classes; %d train utts (%d frames), %d dev utts; "
                 "%d steps/epoch of %d frames x %d rank(s)", cfg_model.arch, count_params(model), num_classes,
                 len(utts), loader.total_frames, len(dev_utts), steps_per_epoch, cfg.data.batch_size,
                 dist_info.world)
    net = model
    if dist_info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    stepper = Stepper(net, model, optimizer, cfg, device, distributed=dist_info.enabled)
    if dist_info.is_main:
        log.info("training step: %s (fast_step=%s), GEMM: %s", stepper.path, cfg.fast_step, stepper.gemm)
    if resumed is not None:
        stepper.load_state_dict(resumed.get("stepper") or {})

    def save_last() -> None:
        gathered: list[Any] = [_rng_states(device)]
        if dist_info.enabled:
            gathered = [None] * dist_info.world
            torch.distributed.all_gather_object(gathered, _rng_states(device))
        if not dist_info.is_main:
            return
        ck = _checkpoint_state(cfg, model, cmvn, fingerprints, state.metrics, floor)
        ck.update(kind="train", optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                  stepper=stepper.state_dict(),
                  rng={"torch": [g[0] for g in gathered], "cuda": [g[1] for g in gathered if g[1] is not None]},
                  nonfinite=state.nonfinite, epoch_stats=state.stats.as_dict(),
                  position={"epoch": state.epoch, "step": state.step, "global_step": state.global_step},
                  best={"epoch": state.best_epoch, "acc": state.best_acc})
        save_checkpoint(out / LAST, ck)

    def write_metrics() -> None:
        """metrics.json: the epochs (each says its step path and GEMM), the best one, and the step
        path and GEMM of this run."""
        atomic_write_json(out / METRICS, {"epochs": state.metrics, "best_epoch": state.best_epoch,
                                          "best_dev_frame_acc": state.best_acc, "step_path": stepper.path,
                                          "gemm": stepper.gemm})

    # ---- epochs ---------------------------------------------------------------------------
    stop = False
    while state.epoch < cfg.max_epochs and not stop:
        epoch = state.epoch
        net.train()
        steps = loader.steps_per_epoch(epoch)
        t_wait = time.perf_counter()
        t_epoch = time.perf_counter()
        for batch in progress(loader.batches(epoch, state.step), total=steps - state.step, desc=f"epoch {epoch}"):
            now = time.perf_counter()
            state.stats.wait_seconds += now - t_wait
            batch = batch.to(device)
            r = stepper.step(batch, schedule.lr(state.global_step))
            if r.ok:
                state.stats.loss_sum += r.loss * batch.size
                state.stats.correct += r.correct
                state.stats.frames += batch.size
            else:
                state.nonfinite += 1
                log.warning("epoch %d step %d: non-finite loss/gradient (%d so far); step skipped",
                            epoch, state.step, state.nonfinite)
                if state.nonfinite > cfg.max_nonfinite:
                    raise AsrkdError(
                        f"training diverged: {state.nonfinite} steps with a non-finite loss or gradient "
                        f"(limit max_nonfinite={cfg.max_nonfinite}); lower optim.lr or check the data"
                    )
            state.step += 1
            state.global_step += 1
            state.stats.steps += 1
            t_wait = time.perf_counter()
            state.stats.seconds += t_wait - now
            if cfg.checkpoint_every_steps > 0 and state.step % cfg.checkpoint_every_steps == 0 and state.step < steps:
                save_last()

        # ---- end of epoch: dev metrics, schedule, keep-best, early stopping --------------------
        d_loss, d_correct, d_frames = evaluate_frames(
            net.module if dist_info.enabled else net,
            eval_batches(dev_feats, dev_labels, dev_shard, cfg_model.left_context, cfg_model.right_context,
                         max(cfg.data.batch_size, 1024), cmvn, floor),
            dev_autocast, cfg, device)
        s = state.stats
        tr = all_reduce_sum([s.loss_sum, s.correct, s.frames, d_loss, d_correct, d_frames], dist_info)
        dev_acc = tr[4] / max(1.0, tr[5])
        improved = dev_acc > state.best_acc
        lr_used = schedule.lr(state.global_step - 1)  # the rate of this epoch's last step
        halved = schedule.end_epoch(dev_acc)
        elapsed = time.perf_counter() - t_epoch
        m = {
            "epoch": epoch,
            "lr": lr_used,
            "train_loss": tr[0] / max(1.0, tr[2]),
            "train_frame_acc": tr[1] / max(1.0, tr[2]),
            "train_frames": int(tr[2]),
            "dev_loss": tr[3] / max(1.0, tr[5]),
            "dev_frame_acc": dev_acc,
            "dev_frames": int(tr[5]),
            "nonfinite_skipped": state.nonfinite,
            "frames_per_s": s.frames * dist_info.world / max(1e-9, s.seconds + s.wait_seconds),
            "loader_wait_frac": s.wait_seconds / max(1e-9, s.seconds + s.wait_seconds),
            "seconds": elapsed,
            "step_path": stepper.path,  # fused-bf16 | autograd
            "gemm": stepper.gemm,  # amx | onednn | n/a (autograd)
        }
        state.metrics.append(m)
        log.info("epoch %d: train loss %.4f acc %.4f | dev loss %.4f acc %.4f | %.0f frames/s%s",
                 epoch, m["train_loss"], m["train_frame_acc"], m["dev_loss"], dev_acc, m["frames_per_s"],
                 " | lr halved" if halved else "")
        if improved:
            state.best_acc, state.best_epoch = dev_acc, epoch
            if dist_info.is_main:
                save_checkpoint(out / BEST, {"kind": "model", "epoch": epoch,
                                             **_checkpoint_state(cfg, model, cmvn, fingerprints, state.metrics, floor)})
        patience = cfg.early_stop_patience
        if patience > 0 and epoch - state.best_epoch >= patience:
            log.info("early stopping: no better dev frame accuracy for %d epochs", patience)
            stop = True
        state.epoch, state.step, state.stats = epoch + 1, 0, EpochStats()
        if stop:
            state.epoch = cfg.max_epochs  # a resumed stopped run does not train on
        save_last()
        if dist_info.is_main:
            write_metrics()

    # ---- final model = the best epoch's --------------------------------------------------------
    if dist_info.is_main:
        best = load_checkpoint(out / BEST)
        best["metrics"] = state.metrics
        best["kind"] = "model"
        best.pop("format", None)
        best.pop("version", None)
        save_checkpoint(out / FINAL, best)
        write_metrics()
        mark_done(out, {"best_epoch": state.best_epoch, "best_dev_frame_acc": state.best_acc})
        log.info("done: best dev frame acc %.4f (epoch %d) -> %s", state.best_acc, state.best_epoch, out / FINAL)
    barrier(dist_info)
    return state.metrics
