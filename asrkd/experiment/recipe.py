"""A recipe's own settings (``recipes/<corpus>/conf/recipe.yaml``): the experiment's design in
numbers (how many teachers and seeds, which data, which cache, which sweep), typed.

The steps' own configs (features, units, aligner, teacher, student, decoder) are separate files
of the same conf directory, read by the steps themselves. ``asrkd recipe-conf`` prints these
settings as shell assignments for ``run.sh``; :mod:`asrkd.experiment.plan` turns them into the
experiment's commands.
"""

from __future__ import annotations

import dataclasses
import shlex
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from asrkd.config import load_config, to_dict
from asrkd.errors import AsrkdError
from asrkd.inference.spec import check_device_spec

RECIPE_YAML = "recipe.yaml"


@dataclass(frozen=True)
class RecipeConfig:
    nj: int = 2                        # parallel jobs (feature/cache workers, models trained at once); threads = cores / nj
    num_teachers: int = 4              # ensemble size: exp/teacher_<k> with seed k, k = 1..N (the paper: 10)
    num_seeds: int = 1                 # baselines and students trained per system (mean and spread in the report)
    baseline_seed: int = 0             # baseline_s<k> uses seed baseline_seed + k - 1
    student_seed: int = 0              # student_s<k> uses seed student_seed + k - 1
    transfer_copies: int = 0           # > 0: baselines, students and the cache on train + N augmented copies
    teachers_on_copies: bool = False   # with transfer_copies > 0: the teachers train on N copies of their own
    cache_format: Literal["auto", "dense", "topk"] = "auto"  # soft-target cache: dense fp16, top-k, or auto: top-k above cache_dense_max_classes classes
    cache_dense_max_classes: int = 512  # cache_format auto: dense up to this many classes (the inventory's), top-k above
    cache_k: int = 20                  # classes kept per frame with topk
    sweep_temperatures: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)  # the temperature sweep (stage 7)
    small_fraction: float = 0.03       # the small-data experiment (stage 8): share of the training utterances
    max_unaligned: float = 0.05        # alignment stops the recipe when a set loses more than this share of its utterances
    wer_decoder: Literal["graph", "unit-lm"] = "graph"  # WER through the word graph (lexicon + data/lm) or the unit n-gram
    device: str = "auto"               # --device of train, cache-targets and evaluate: auto (a GPU when CUDA is available) | cpu | cuda[:N]
    synth_preset: str = "default"      # synth recipe only: data_prep.synth preset (tiny | default | large)
    synth_seed: int = 1                # synth recipe only: corpus seed (same seed, byte-identical corpus)
    RANGES: ClassVar[dict[str, str]] = {"cache_dense_max_classes": "[1, inf)"}

    def __post_init__(self) -> None:
        check_device_spec(self.device)


def _list_override(item: str) -> str:
    """``sweep_temperatures=1 2 5`` (a shell-style list, as run.sh flags give it) -> YAML ``[1, 2, 5]``."""
    key, _, value = item.partition("=")
    hints = typing.get_type_hints(RecipeConfig)
    if typing.get_origin(hints.get(key.strip())) is tuple and not value.lstrip().startswith("["):
        return f"{key}=[{', '.join(value.split())}]"
    return item


def load_recipe_config(path: Path, overrides: list[str] | None = None) -> RecipeConfig:
    """``recipe.yaml`` at ``path`` plus ``key=value`` overrides (unknown keys are errors that list
    the valid ones; values are type-checked)."""
    return load_config(RecipeConfig, path, [_list_override(o) for o in overrides or []])


def _shell_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return " ".join(_shell_value(x) for x in v)
    return str(v)


def shell_assignments(cfg: RecipeConfig, key: str | None = None) -> str:
    """``name=value`` lines (shell-quoted; lists space-separated, booleans true/false) for
    ``eval`` in a recipe; with ``key``, that setting's bare value."""
    values = to_dict(cfg)
    if key is not None:
        if key not in values:
            raise AsrkdError(f"unknown recipe setting {key!r}; valid keys: {sorted(values)}")
        return _shell_value(values[key]) + "\n"
    return "".join(f"{f.name}={shlex.quote(_shell_value(values[f.name]))}\n" for f in dataclasses.fields(cfg))
