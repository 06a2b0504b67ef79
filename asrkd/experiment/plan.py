"""The experiment every recipe runs after its own data preparation, as ``asrkd`` command lines:
Hinton, Vinyals & Dean (2015), section 4 (Table 1) and, on request, the temperature sweep, the
other cache format and section 6 (soft targets as regularisers on a small training set).

This module is the experiment's design: which models are trained on which data with which seeds
and configs, which caches they read and how each is evaluated. Paths come from the layout
(:mod:`asrkd.experiment.layout`), numbers from the recipe settings (:class:`RecipeConfig`) and
the student's config (its T is the main cache's). Nothing here runs anything: each step returns
its commands in order, and ``asrkd recipe-plan`` prints them for ``recipes/lib.sh: run_plan``,
which runs a :class:`Job` in the foreground, or in the recipe's pool of ``nj`` background jobs
when it has a ``log``; :data:`WAIT` waits for the pool. Every command skips itself when its
output is complete, so a rerun only does what is missing.

Steps (the recipe stage that runs them):

- ``features`` (1), ``units`` (2), ``alignment`` (3): the aligner is trained on train (with
  ``triphone.num_leaves`` in align.yaml: a tied-state system, its inventory data/lang_tri, on
  which every model, cache and graph is then made); dev and test are aligned by it, before any
  teacher.
- ``graph`` (3): the word decoding graph HCLG of that inventory and stage 0's word LM (with
  ``wer_decoder: graph``, the default; ``unit-lm`` decodes with a unit n-gram of train's text).
- ``transfer-set`` (4, 5): with ``transfer_copies`` N > 0, train + N augmented copies, on which
  the baselines and students train and the soft targets are cached; with ``teachers_on_copies``
  the teachers get N copies of their own, drawn with another seed, so the transfer set's copies
  stay inputs they never saw (teachers trained on the transfer set itself recovered only
  63% / 51% of the gain on synth, dev / test: recipes/synth/README.md).
- ``teachers-and-baselines`` (4): teacher k (seed k); ``num_seeds`` baselines of a teacher's
  size and config (seeds from ``baseline_seed``), on the students' data; with a transfer set,
  the same baselines on train alone too (the report compares with the better kind on dev).
- ``cache`` (5): the teachers' mean posteriors at the students' T on the students' data.
- ``students`` (6): ``num_seeds`` students (seeds from ``student_seed``) on that cache.
- ``sweep``, ``other-format`` (7): a cache and a student per T of ``sweep_temperatures``; the
  students again on the other storage format (dense <-> top-k) of the main cache.
- ``small-data`` (8): a hard-label model and a soft-target student on a seeded
  ``small_fraction`` of train; frame accuracy on that subset and on test, and the full-data
  baseline's on train.
- ``evaluation`` (9): frame accuracy of every model on dev and test; WER (LM weight and
  insertion penalty swept on dev, test decoded with dev's choice) of the ensemble and of the
  first seed of each baseline kind and of the students.
- ``report`` (10): ``asrkd report exp``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

from asrkd.errors import AsrkdError
from asrkd.experiment import layout as L
from asrkd.experiment.layout import Layout
from asrkd.experiment.recipe import RECIPE_YAML, RecipeConfig, load_recipe_config
from asrkd.softtargets.choice import FORMATS, OTHER_THAN_AUTO

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Job:
    """One command of a step."""

    argv: tuple[str, ...]     # the command line, "asrkd" first
    log: Path | None = None   # None: run in the foreground; else in the job pool, output appended here


WAIT = "wait"  # wait for the pool's jobs before what follows
Step = list[Union[Job, str]]


def _asrkd(*args: object) -> tuple[str, ...]:
    return ("asrkd", *(str(a) for a in args))


@dataclass(frozen=True)
class Recipe:
    """What the steps are a function of."""

    cfg: RecipeConfig   # conf/recipe.yaml
    conf: Path          # the conf directory (teacher.yaml, student.yaml, ... live there)
    temperature: float  # the students' T (conf/student.yaml), the main cache's too
    tied: bool = False  # the aligner grows tied triphone states (conf/align.yaml triphone.num_leaves > 0)
    min_state_frames: int = 1  # conf/decode.yaml's minimum frames per HMM state, the word graph's too
    lay: Layout = Layout()  # relative to the work directory, where the commands run

    @classmethod
    def load(cls, conf: Path, overrides: Sequence[str] = ()) -> "Recipe":
        from asrkd.align.config import AlignConfig
        from asrkd.config import load_config
        from asrkd.decode.decoder import DecodeConfig
        from asrkd.train.config import load_train_config

        conf = Path(conf)
        student = load_train_config(conf / "student.yaml")
        # A conf dir for later stages only (no align.yaml) runs on data/lang.
        align = conf / "align.yaml"
        tied = align.is_file() and load_config(AlignConfig, align).triphone.num_leaves > 0
        decode = conf / "decode.yaml"
        min_frames = load_config(DecodeConfig, decode).min_state_frames if decode.is_file() else 1
        return cls(load_recipe_config(conf / RECIPE_YAML, list(overrides)), conf, student.loss.temperature, tied,
                   min_frames)

    @property
    def classes(self) -> Path:
        """The class inventory every model, cache and graph is made on (data/lang or data/lang_tri)."""
        return self.lay.classes(self.tied)

    # ---- who trains on what --------------------------------------------------------------
    @property
    def kd_data(self) -> Path:
        """The baselines' and students' training data, on which the soft targets are cached."""
        c = self.cfg.transfer_copies
        return self.lay.transfer_set(c) if c > 0 else self.lay.split("train")

    @property
    def teachers_on_copies(self) -> bool:
        return self.cfg.teachers_on_copies and self.cfg.transfer_copies > 0

    @property
    def teacher_data(self) -> Path:
        return self.lay.teacher_copies(self.cfg.transfer_copies) if self.teachers_on_copies else self.lay.split("train")

    @property
    def teachers(self) -> list[Path]:
        """The ensemble's checkpoints."""
        return [self.lay.teacher(k) / L.CHECKPOINT for k in range(1, self.cfg.num_teachers + 1)]

    @property
    def seeds(self) -> range:
        return range(1, self.cfg.num_seeds + 1)

    def baseline_kinds(self) -> list[bool]:
        """``plain`` of each baseline kind: on the students' data; with a transfer set, on train alone too."""
        return [False, True] if self.cfg.transfer_copies > 0 else [False]

    # ---- command lines -------------------------------------------------------------------
    def train(self, config: str, out: Path, seed: int, data: Path, labels: Path | None = None,
              soft_targets: Path | None = None, temperature: float | None = None) -> Job:
        """``asrkd train`` of one model (dev: data/dev), in the pool (log: OUT/run.log)."""
        lay = self.lay
        args = ["train", "--config", self.conf / config, "--feats", data, "--labels", labels or lay.labels(data),
                "--dev-feats", lay.split("dev"), "--dev-labels", lay.labels(lay.split("dev")), "--seed", seed]
        if soft_targets is not None:
            args += ["--soft-targets", soft_targets]
        if temperature is not None:
            args += ["--set", f"loss.temperature={float(temperature)}"]
        return Job(_asrkd(*args, "--device", self.cfg.device, "--out", out), out / "run.log")

    def cache_targets(self, out: Path, t: float, storage: str | None = None) -> Job:
        """The ensemble's combined posteriors at ``t`` on the students' data (foreground: it
        runs ``nj`` workers itself)."""
        models = [a for m in self.teachers for a in ("--model", m)]
        storage = storage or self.cfg.cache_format
        # auto and other-than-auto are resolved by cache-targets from the teachers' class count.
        chosen = ["--dense-max-classes", self.cfg.cache_dense_max_classes] if storage not in FORMATS else []
        return Job(_asrkd("cache-targets", *models, "--feats", self.kd_data, "--T", float(t), "--format",
                          storage, *chosen, "--k", self.cfg.cache_k, "--lang", self.classes,
                          "--nj", self.cfg.nj, "--device", self.cfg.device, "--out", out))

    def eval_frames(self, out: Path, data: Path, labels: Path, models: Sequence[Path], log: Path | None,
                    *wer: object) -> Job:
        """``asrkd evaluate``: frame accuracy of the model(s) on ``data`` into ``out`` (and the
        ``wer`` options); ``log`` None: in the foreground."""
        models_args = [a for m in models for a in ("--model", m)]
        return Job(_asrkd("evaluate", *models_args, "--feats", data, "--labels", labels, "--device", self.cfg.device,
                          "--out", out, *wer), log)

    def eval_model(self, system: Path, models: Sequence[Path], split: str, wer: bool) -> Job:
        """Evaluation of a system (one model, or the ensemble) on dev or test into
        ``system/eval_<split>``, in the pool (log: system/eval.log). With ``wer``, decoding too:
        LM weight and insertion penalty swept on dev; test decoded with dev's choice."""
        lay = self.lay
        data, train = lay.split(split), lay.split("train")
        decode: list[object] = []
        if wer and self.cfg.wer_decoder == "graph":
            decode = ["--graph", lay.graph, "--prior-labels", lay.labels(train), "--nj", self.cfg.nj]
        elif wer:
            decode = ["--lang", lay.lang, "--train-data", train, "--prior-labels", lay.labels(train)]
        if wer:
            decode += (["--dev", lay.split("dev"), "--decode-config", self.conf / "decode.yaml"] if split == "dev" else
                       ["--decode-config", L.eval_dir(system, "dev") / "decode_config.yaml"])
        return self.eval_frames(L.eval_dir(system, split), data, lay.labels(data), models, system / "eval.log", *decode)

    def evaluate(self, systems: Sequence[tuple[Path, Sequence[Path], bool]]) -> Step:
        """Dev, then test, of every ``(system dir, checkpoints, with WER)`` (test may use dev's
        decoding choice)."""
        step: Step = [self.eval_model(d, models, "dev", wer) for d, models, wer in systems]
        return [*step, WAIT, *(self.eval_model(d, models, "test", wer) for d, models, wer in systems)]


# ---- the steps --------------------------------------------------------------------------------

def features(r: Recipe) -> Step:
    return [Job(_asrkd("compute-feats", "--config", r.conf / "fbank.yaml", "--nj", r.cfg.nj, r.lay.split(s)))
            for s in SPLITS]


def units(r: Recipe) -> Step:
    return [Job(_asrkd("make-units", "--config", r.conf / "units.yaml", r.lay.split("train"), r.lay.lang))]


def alignment(r: Recipe) -> Step:
    lay = r.lay
    # An utterance that cannot be aligned is left out (a WARNING each, listed in labels/ali/failed).
    skip = ("--skip-unalignable", "--max-skip-fraction", r.cfg.max_unaligned)
    tied = ("--tied-lang", lay.lang_tri) if r.tied else ()
    return [Job(_asrkd("align", "--config", r.conf / "align.yaml", "--exp", lay.align, "--name", L.ALI, *skip, *tied,
                       lay.split("train"), lay.lang)),
            *(Job(_asrkd("align", "--model", lay.align / L.ALIGN_MODEL, "--name", L.ALI, *skip, lay.split(s), r.classes))
              for s in ("dev", "test"))]


def graph(r: Recipe) -> Step:
    """The word decoding graph of the class inventory (its tree) and the word LM of stage 0."""
    if r.cfg.wer_decoder != "graph":
        return []
    from asrkd.lm.train import ARPA_NAME

    # The HMM topology's minimum duration is the unit-LM decoder's (decode.yaml), so both decoders
    # search the same paths (yes/no: a cut-off word at a file's start is not decoded as a word).
    return [Job(_asrkd("mkgraph", r.classes, r.lay.graph, "--arpa", r.lay.lm / ARPA_NAME,
                       "--min-state-frames", r.min_state_frames))]


def transfer_set(r: Recipe) -> Step:
    c = r.cfg.transfer_copies
    if c <= 0:
        return []
    train = r.lay.split("train")
    step: Step = [Job(_asrkd("augment-feats", train, r.lay.labels(train), r.kd_data, "--copies", c, "--seed", 0))]
    if r.teachers_on_copies:
        step.append(Job(_asrkd("augment-feats", train, r.lay.labels(train), r.teacher_data, "--copies", c, "--seed", 1)))
    return step


def teachers_and_baselines(r: Recipe) -> Step:
    cfg, lay = r.cfg, r.lay
    step: Step = [r.train("teacher.yaml", lay.teacher(k), k, r.teacher_data) for k in range(1, cfg.num_teachers + 1)]
    for k in r.seeds:
        for plain in r.baseline_kinds():
            step.append(r.train("teacher.yaml", lay.baseline(k, plain), cfg.baseline_seed + k - 1,
                                lay.split("train") if plain else r.kd_data))
    return step


def cache(r: Recipe) -> Step:
    return [r.cache_targets(r.lay.cache(r.temperature), r.temperature)]


def _students(r: Recipe, cache_dir: Path, out: Callable[[int], Path]) -> Step:
    return [r.train("student.yaml", out(k), r.cfg.student_seed + k - 1, r.kd_data, soft_targets=cache_dir)
            for k in r.seeds]


def students(r: Recipe) -> Step:
    return _students(r, r.lay.cache(r.temperature), r.lay.student)


def sweep(r: Recipe) -> Step:
    lay, temps = r.lay, r.cfg.sweep_temperatures
    step: Step = [r.cache_targets(lay.sweep_cache(t), t) for t in temps]
    step += [r.train("student.yaml", lay.sweep_student(t), r.cfg.student_seed, r.kd_data,
                     soft_targets=lay.sweep_cache(t), temperature=t) for t in temps]
    return [*step, WAIT, *r.evaluate([(lay.sweep_student(t), [lay.sweep_student(t) / L.CHECKPOINT], True)
                                      for t in temps])]


def other_format(r: Recipe) -> Step:
    """The main students again on the other storage format of the same ensemble at the same T."""
    # With cache_format auto the main format depends on the class inventory, which does not exist
    # yet when the plan is made (recipes/experiment.sh plans every stage up front, before the
    # aligner makes data/lang_tri): cache-targets resolves "other-than-auto" at run time, from the
    # teachers' class count, and the report reads the format from the cache's meta.json
    # (exp/format/other-than-auto/cache).
    storage = {"dense": "topk", "topk": "dense"}.get(r.cfg.cache_format, OTHER_THAN_AUTO)
    name = L.format_name(storage, r.cfg.cache_k)
    lay = r.lay
    step: Step = [r.cache_targets(lay.format_cache(name), r.temperature, storage)]
    step += _students(r, lay.format_cache(name), lambda k: lay.format_student(name, k))
    return [*step, WAIT, *r.evaluate([(lay.format_student(name, k), [lay.format_student(name, k) / L.CHECKPOINT],
                                       False) for k in r.seeds])]


def small_data(r: Recipe) -> Step:
    cfg, lay = r.cfg, r.lay
    train = lay.split("train")
    sub = lay.small_subset(cfg.small_fraction)
    hard, soft = lay.small_data(L.HARD), lay.small_data(L.SOFT)
    step: Step = [Job(_asrkd("subset-data", "--fraction", cfg.small_fraction, train, sub)),
                  Job(_asrkd("compute-feats", "--config", r.conf / "fbank.yaml", "--nj", cfg.nj, sub)),
                  r.train("teacher.yaml", hard, cfg.baseline_seed, sub, labels=lay.labels(train)),
                  r.train("student.yaml", soft, cfg.student_seed, sub, labels=lay.labels(train),
                          soft_targets=lay.cache(r.temperature)),
                  WAIT]
    test = lay.split("test")
    for m in (hard, soft):
        step.append(r.eval_frames(L.eval_dir(m, "train"), sub, lay.labels(train), [m / L.CHECKPOINT], None))
        step.append(r.eval_frames(L.eval_dir(m, "test"), test, lay.labels(test), [m / L.CHECKPOINT], None))
    # The full-data baseline on the training set: the first one trained on data/train alone.
    full = lay.baseline(1, plain=cfg.transfer_copies > 0)
    step.append(r.eval_frames(L.eval_dir(full, "train"), train, lay.labels(train), [full / L.CHECKPOINT], None))
    return step


def evaluation(r: Recipe) -> Step:
    lay = r.lay
    systems: list[tuple[Path, Sequence[Path], bool]] = [(lay.ensemble, r.teachers, True)]
    for k in r.seeds:  # WER for the first seed of each kind only
        dirs = [lay.baseline(k), lay.student(k)] + ([lay.baseline(k, plain=True)] if r.cfg.transfer_copies > 0 else [])
        systems += [(d, [d / L.CHECKPOINT], k == 1) for d in dirs]
    systems += [(m.parent, [m], False) for m in r.teachers]
    return r.evaluate(systems)


def report(r: Recipe) -> Step:
    return [Job(_asrkd("report", r.lay.exp))]


STEPS: dict[str, Callable[[Recipe], Step]] = {
    "features": features, "units": units, "alignment": alignment, "graph": graph, "transfer-set": transfer_set,
    "teachers-and-baselines": teachers_and_baselines, "cache": cache, "students": students, "sweep": sweep,
    "other-format": other_format, "small-data": small_data, "evaluation": evaluation, "report": report,
}


def plan_lines(r: Recipe, steps: Sequence[str] | None = None) -> list[str]:
    """Shell-quoted lines, per step ``STEP begin`` and then one per command: ``STEP run ARGV...``,
    ``STEP pool LOG ARGV...`` or ``STEP wait`` (the format ``recipes/lib.sh: run_plan`` reads)."""
    unknown = [s for s in steps or [] if s not in STEPS]
    if unknown:
        raise AsrkdError(f"unknown step(s) {unknown}; steps: {list(STEPS)}")
    lines = []
    for name in steps or STEPS:
        lines.append(shlex.join([name, "begin"]))
        for item in STEPS[name](r):
            if isinstance(item, str):
                lines.append(shlex.join([name, item]))
            elif item.log is None:
                lines.append(shlex.join([name, "run", *item.argv]))
            else:
                lines.append(shlex.join([name, "pool", str(item.log), *item.argv]))
    return lines
