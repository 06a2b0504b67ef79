"""The experiment layout: every directory a recipe writes and ``asrkd report`` reads, named here once.

The recipes' steps (:mod:`asrkd.experiment.plan`) write these paths and the report
(:mod:`asrkd.experiment.report`) finds them again; neither spells a directory name itself::

    <work>/
      data/{train,dev,test}/         Kaldi data dirs; feats/ utt2num_frames cmvn.json; labels/ali/
      data/lang/                     label inventory (asrkd make-units)
      data/lang_tri/                 tied-state inventory (asrkd align with triphones: lang + decision tree)
      data/lm/                       word LM (asrkd train-lm, the recipe's stage 0)
      data/graph/                    word decoding graph HCLG of the class inventory and the LM (asrkd mkgraph)
      data/train_aug<N>/             the transfer set: train + N augmented copies (own labels/ali)
      data/train_aug<N>_teachers/    the teachers' own copies (another seed), with teachers_on_copies
      data/train_frac<F>/            the seeded subset of train of the small-data experiment
      exp/align/                     the flat-start aligner (final.gmm.npz)
      exp/teacher_<k>/               ensemble member k (seed k)
      exp/baseline_s<k>/             baseline seed k; exp/baseline_plain_s<k>/: on data/train alone
      exp/student_s<k>/              distilled model seed k
      exp/cache_T<T>/                soft-target cache of the ensemble at the students' T
      exp/ensemble/                  evaluations of the ensemble only
      exp/<model>/eval_{dev,test,train}/   asrkd evaluate outputs
      exp/sweep/cache_T<T>/, exp/sweep/T<T>/             the temperature sweep
      exp/format/<dense|topk<k>>/{cache,student_s<k>}/   students on the other cache format
      exp/small_data/{hard,soft}/    the small-data experiment (section 6)

A model trained with several seeds is ``<name>_s1``, ``<name>_s2``, ...; temperatures are named
by :func:`temperature_name` (``2.0``), so one T has one directory name however a YAML file
spells it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DATA, EXP = "data", "exp"
LANG = "lang"                  # data/lang
LANG_TRI = "lang_tri"          # data/lang_tri (the tied states)
LM = "lm"                      # data/lm
GRAPH = "graph"                # data/graph
ALI = "ali"                    # the aligner's label set: data/<set>/labels/ali
CHECKPOINT = "final.pt"        # the model asrkd train keeps (best on dev)
ALIGN_MODEL = "final.gmm.npz"  # the aligner asrkd align --exp keeps
# System directory names under exp/ (the three systems of Table 1 and the ensemble's members).
TEACHER, BASELINE, STUDENT, ENSEMBLE = "teacher", "baseline", "student", "ensemble"
PLAIN = "plain"                # baseline kind trained on data/train alone (next to a transfer set)
SWEEP, FORMAT, SMALL_DATA = "sweep", "format", "small_data"
HARD, SOFT = "hard", "soft"    # the two models of the small-data experiment
FORMAT_CACHE = "cache"         # format/<name>/cache

_SEEDED = re.compile(r"(?P<name>.+)_s(?P<k>[0-9]+)")


def temperature_name(t: float) -> str:
    """A temperature as it appears in directory names: ``2.0``, ``1.0``, ``10.0``."""
    return str(float(t))


def seeded(name: str, k: int) -> str:
    """Directory name of seed ``k`` (1-based) of a system: ``baseline_s3``."""
    return f"{name}_s{k}"


def seed_of(dirname: str, name: str) -> int | None:
    """``k`` when ``dirname`` is :func:`seeded` ``(name, k)``, else None."""
    m = _SEEDED.fullmatch(dirname)
    return int(m.group("k")) if m and m.group("name") == name else None


def eval_dir(model_dir: Path, split: str) -> Path:
    """Where ``asrkd evaluate`` writes a model's (or ensemble's) results on one set."""
    return Path(model_dir) / f"eval_{split}"


def format_name(storage: str, k: int) -> str:
    """Name of a cache format's directory under ``exp/format/``: ``dense`` or ``topk<k>``."""
    return f"topk{k}" if storage == "topk" else storage


@dataclass(frozen=True)
class Layout:
    """The paths of one experiment: ``data`` and ``exp`` side by side (relative paths stay
    relative, as the recipes run inside the work directory)."""

    data: Path = Path(DATA)  # the data directories
    exp: Path = Path(EXP)    # the experiment directory (what asrkd report reads)

    @classmethod
    def at(cls, work: Path) -> "Layout":
        """The layout of a recipe's work directory."""
        return cls(Path(work) / DATA, Path(work) / EXP)

    @classmethod
    def of_exp(cls, exp: Path) -> "Layout":
        """The layout around an experiment directory (its data dir beside it)."""
        return cls(Path(exp).parent / DATA, Path(exp))

    # ---- data -----------------------------------------------------------------------------
    def split(self, name: str) -> Path:
        """``data/<name>``: train, dev, test."""
        return self.data / name

    @property
    def lang(self) -> Path:
        return self.data / LANG

    @property
    def lang_tri(self) -> Path:
        return self.data / LANG_TRI

    def classes(self, tied: bool) -> Path:
        """The class inventory the models predict: data/lang_tri with tied states, else data/lang."""
        return self.lang_tri if tied else self.lang

    @property
    def lm(self) -> Path:
        return self.data / LM

    @property
    def graph(self) -> Path:
        return self.data / GRAPH

    def labels(self, data_dir: Path) -> Path:
        """The aligner's frame labels of a data dir."""
        return Path(data_dir) / "labels" / ALI

    def transfer_set(self, copies: int) -> Path:
        """Train + ``copies`` augmented copies (asrkd augment-feats)."""
        return self.data / f"train_aug{copies}"

    def teacher_copies(self, copies: int) -> Path:
        """The teachers' own augmented copies (another seed than the transfer set's)."""
        return self.data / f"train_aug{copies}_teachers"

    def small_subset(self, fraction: float) -> Path:
        """The seeded ``fraction`` of train (tables only; labels are train's)."""
        return self.data / f"train_frac{fraction}"

    # ---- models and caches -----------------------------------------------------------------
    @property
    def align(self) -> Path:
        return self.exp / "align"

    def teacher(self, k: int) -> Path:
        return self.exp / f"{TEACHER}_{k}"

    def baseline(self, k: int, plain: bool = False) -> Path:
        return self.exp / seeded(f"{BASELINE}_{PLAIN}" if plain else BASELINE, k)

    def student(self, k: int) -> Path:
        return self.exp / seeded(STUDENT, k)

    @property
    def ensemble(self) -> Path:
        return self.exp / ENSEMBLE

    def cache(self, t: float) -> Path:
        return self.exp / f"cache_T{temperature_name(t)}"

    def sweep_cache(self, t: float) -> Path:
        return self.exp / SWEEP / f"cache_T{temperature_name(t)}"

    def sweep_student(self, t: float) -> Path:
        return self.exp / SWEEP / f"T{temperature_name(t)}"

    def format_dir(self, name: str) -> Path:
        """``name`` from :func:`format_name`."""
        return self.exp / FORMAT / name

    def format_cache(self, name: str) -> Path:
        return self.format_dir(name) / FORMAT_CACHE

    def format_student(self, name: str, k: int) -> Path:
        return self.format_dir(name) / seeded(STUDENT, k)

    def small_data(self, kind: str) -> Path:
        """``kind``: :data:`HARD` or :data:`SOFT`."""
        return self.exp / SMALL_DATA / kind

    # ---- finding what was written (asrkd report) ---------------------------------------------
    def runs(self, name: str) -> list[Path]:
        """The run directories of a system ``name`` (a path under exp/): ``<name>_s<k>``,
        k ascending, when there are any, else ``<name>`` itself (also when it does not exist,
        so that its numbers come out missing)."""
        parent = (self.exp / name).parent
        base = Path(name).name
        found = sorted((k, d) for d in (parent.iterdir() if parent.is_dir() else [])
                       if d.is_dir() and (k := seed_of(d.name, base)) is not None)
        return [d for _, d in found] or [self.exp / name]

    def baseline_kinds(self, name: str = BASELINE) -> list[str]:
        """``name`` and every ``<name>_<tag>`` with seeded runs (e.g. ``baseline_plain``)."""
        tag = re.compile(re.escape(name) + r"_([a-z][a-z0-9]*)")
        tags = sorted({m.group(1) for d in (self.exp.iterdir() if self.exp.is_dir() else [])
                       if d.is_dir() and (m := _SEEDED.fullmatch(d.name)) and (m := tag.fullmatch(m.group("name")))})
        return [name] + [f"{name}_{t}" for t in tags]

    def sweep_dirs(self) -> list[Path]:
        """Everything under ``exp/sweep/`` (students and their caches), sorted."""
        root = self.exp / SWEEP
        return sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []

    def format_dirs(self) -> list[Path]:
        """The ``exp/format/<name>/`` directories, sorted."""
        root = self.exp / FORMAT
        return sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []

    def caches(self) -> list[Path]:
        """The main ``exp/cache_T<T>/`` directories, sorted."""
        return sorted(d for d in self.exp.glob("cache_T*") if d.is_dir())
