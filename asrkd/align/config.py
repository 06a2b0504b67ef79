"""Configuration of ``asrkd align`` (``conf/align.yaml``): the monophone flat start, the tied-state
triphone system that may follow it, and realignment with a trained DNN."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from asrkd.align.frontend import FrontendConfig
from asrkd.align.treebuild import TreeConfig


@dataclass(frozen=True)
class TriphoneConfig:
    num_leaves: int = 0  # tied states (pdfs) the decision tree grows to; 0: the monophone system only
    totgauss: int = 10000  # Gaussians over all pdfs at the end of mixture growth (Kaldi --totgauss)
    iterations: int = 35  # re-estimation passes (Kaldi train_deltas num_iters)
    mixup_iterations: int = 25  # Gaussians grow linearly up to this pass (Kaldi max_iter_inc)
    realign_iters: tuple[int, ...] = (10, 20, 30)  # passes that start with a Viterbi realignment (Kaldi realign_iters)
    gauss_power: float = 0.25  # Gaussians per pdf grow as (frames of the pdf) ** power (Kaldi --power)
    min_gauss_frames: float = 20.0  # at most one Gaussian per this many frames of a pdf
    tree: TreeConfig = field(default_factory=TreeConfig)  # growing the tree (its num_leaves: set triphone.num_leaves instead)


@dataclass(frozen=True)
class DnnAlignConfig:
    acoustic_scale: float = 0.1  # weight of (log posterior - log prior) against HMM transitions (Kaldi's nnet alignment: 0.1)
    prior_floor: float = 1.0  # add-this smoothing of the prior counts (frames per class)
    combine: Literal["mean", "geometric"] = "mean"  # how an ensemble's posteriors combine
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # inference precision (auto: bf16 where the CPU has it)


@dataclass(frozen=True)
class AlignConfig:
    frontend: FrontendConfig = field(default_factory=FrontendConfig)  # aligner features
    iterations: int = 20  # re-estimation + realignment passes
    max_gauss: int = 1000  # total Gaussians over all classes reached at mixup_iterations
    mixup_iterations: int = 12  # Gaussians grow linearly over this many iterations
    gauss_power: float = 0.2  # Gaussians per class grow as (frames of the class) ** power
    min_gauss_frames: float = 20.0  # at most one Gaussian per this many frames of a class
    var_floor: float = 0.01  # variance floor, as a fraction of the global variance
    acoustic_scale: float = 0.1  # weight of log-likelihoods against HMM transitions
    vad_threshold: float = 0.3  # flat start: silence below p10 + this x (p90 - p10) of frame energy
    triphone: TriphoneConfig = field(default_factory=TriphoneConfig)  # the tied-state system after the flat start
    dnn: DnnAlignConfig = field(default_factory=DnnAlignConfig)  # realignment with DNNs (asrkd align --dnn)
