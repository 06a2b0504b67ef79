"""Config dataclasses of ``asrkd train`` (sections: model, data, optim, schedule, loss)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal


from asrkd.config import apply_overrides, from_dict, read_yaml_mapping
from asrkd.errors import AsrkdError
from asrkd.models import ModelConfig, apply_preset


@dataclass(frozen=True)
class DataConfig:
    batch_size: int = 512  # frames per step on each rank
    chunk_bytes: int = 2_147_483_648  # bytes of training frames held in RAM at once per process (features, labels, index, soft targets); a corpus up to this size is loaded once
    chunk_frames: int = 20_000_000  # frames held in RAM at once, a second bound (the tighter of the two sets the chunk size)
    cmvn: Literal["global", "none"] = "global"  # mean/variance normalisation with the training set's global stats
    noise_floor_percentile: float = 0.0  # noise floor per log-mel bin before CMVN: this percentile (%) of the training frames (0 = off)
    prefetch: int = 2  # batches a background thread gathers ahead of the step (0 = gather in the step)
    RANGES: ClassVar[dict[str, str]] = {"batch_size": "[1, inf)", "chunk_bytes": "[1, inf)", "chunk_frames": "[1, inf)",
                                        "noise_floor_percentile": "[0, 100)", "prefetch": "[0, inf)"}


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adam", "sgd"] = "adam"  # optimiser
    lr: float = 1e-3  # initial learning rate
    momentum: float = 0.9  # SGD momentum
    beta1: float = 0.9  # Adam beta1 (first-moment decay)
    beta2: float = 0.999  # Adam beta2 (second-moment decay)
    eps: float = 1e-8  # Adam epsilon
    weight_decay: float = 0.0  # L2 weight decay (coupled)
    grad_clip: float = 5.0  # max global gradient norm (0 = no clipping)
    RANGES: ClassVar[dict[str, str]] = {"lr": "[0, inf)", "momentum": "[0, 1)", "beta1": "[0, 1)",
                                        "beta2": "[0, 1)", "eps": "(0, inf)", "weight_decay": "[0, inf)",
                                        "grad_clip": "[0, inf)"}


@dataclass(frozen=True)
class ScheduleConfig:
    kind: Literal["plateau", "cosine", "constant"] = "plateau"  # plateau: halve lr when dev frame acc stalls
    halve_threshold: float = 0.002  # plateau: halve when dev frame acc improves by less than this (absolute, 0-1)
    min_lr: float = 1e-6  # lower bound of the learning rate (cosine end point)
    warmup_steps: int = 0  # linear warm-up from 0 over this many steps
    RANGES: ClassVar[dict[str, str]] = {"halve_threshold": "[0, 1]", "min_lr": "[0, inf)", "warmup_steps": "[0, inf)"}


@dataclass(frozen=True)
class LossConfig:
    soft_weight: float = 0.0  # a in (1-a)*CE(hard) + a*T^2*CE(soft at T); 0 = teacher training
    temperature: float = 1.0  # T of the soft-target term
    RANGES: ClassVar[dict[str, str]] = {"soft_weight": "[0, 1]", "temperature": "(0, inf)"}


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    seed: int = 0  # initialisation, data order and dropout
    # Start from this checkpoint's weights instead of a random initialisation (ESPnet's
    # --init_param): e.g. a student fine-tuned from the baseline. The optimiser, schedule and
    # epoch count start afresh; the architecture must be the same.
    init_from: str = ""
    max_epochs: int = 20  # epochs at most
    early_stop_patience: int = 3  # stop after this many epochs without a better dev frame acc (0 = never)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 autocast on CPUs with bf16, fp16 AMP on GPU
    checkpoint_every_steps: int = 500  # also checkpoint mid-epoch every this many steps (0 = epoch ends only)
    max_nonfinite: int = 20  # abort after this many skipped steps with a non-finite loss or gradient
    num_threads: int = 0  # torch intra-op threads (0 = all cores)
    fast_step: Literal["auto", "off"] = "auto"  # auto: the fused bf16 step where it applies (asrkd/kernels/README.md); off: autograd
    RANGES: ClassVar[dict[str, str]] = {"max_epochs": "[1, inf)", "early_stop_patience": "[0, inf)",
                                        "checkpoint_every_steps": "[0, inf)", "max_nonfinite": "[0, inf)",
                                        "num_threads": "[0, inf)"}


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults < model preset < YAML file < ``--set`` overrides."""
    data = read_yaml_mapping(path) if path is not None else {}
    overrides = list(overrides or [])
    model = dict(data.get("model") or {})
    # A preset chosen on the command line still sits *under* the YAML's explicit values.
    for o in overrides:
        if o.split("=", 1)[0].strip() == "model.preset":
            model["preset"] = o.split("=", 1)[1].strip()
    data = {**data, "model": apply_preset(model)}
    try:
        if overrides:
            data = apply_overrides(data, overrides, TrainConfig)
        return from_dict(TrainConfig, data)
    except AsrkdError as e:
        raise AsrkdError(f"{e} (in {path})" if path else str(e)) from None
