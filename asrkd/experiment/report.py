"""The results of an experiment directory: the paper's Table 1, the temperature sweep and the
section-6 (small data) table, as ``RESULTS.md`` + ``results.json`` (+ a PNG of the sweep).

Everything is read from what the recipe's steps wrote, found through the experiment layout
(:mod:`asrkd.experiment.layout`, which names every directory):

- a system directory (``baseline``, ``ensemble``, ``student``) holds ``eval_dev/`` and
  ``eval_test/`` from ``asrkd evaluate`` (``frame_acc.json``, ``wer.json``); single models also
  hold ``final.pt`` (parameters are counted from it; an ensemble's are the sum over the
  checkpoints its ``frame_acc.json`` lists);
- a system trained with several seeds is ``<dir>_s1``, ``<dir>_s2``, ... instead of ``<dir>``
  (``baseline_s<k>``, ``student_s<k>``): its row is the mean over the seeds, with the spread
  (sample standard deviation) and every seed's numbers in ``results.json["runs"]``;
- the ensemble's members (``teacher_<k>/``, from its ``frame_acc.json``) with their own
  ``eval_{dev,test}/``: one row each;
- ``sweep/T<T>/``: students at other temperatures (T is read from their ``config.yaml``);
- ``format/<name>/student_s<k>/``: students on the other storage format of the same ensemble's
  soft targets (``format/<name>/cache/meta.json`` says which), against the main students;
- ``small_data/{hard,soft}/``: models trained on a fraction of the training set, with
  ``eval_train/`` (that subset) and ``eval_test/``; the first baseline's ``eval_train/`` is the
  full-data baseline's training-set accuracy.

Nothing is invented: a number whose file is missing is ``None`` in ``results.json`` and ``-`` in
the markdown; a mean over seeds is ``None`` unless every seed has the number (WER, which the
recipe decodes for the first seed only, is the mean over the seeds that have it, and the
markdown says how many). Fractions (accuracies, WER) are in 0..1.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

import yaml

from asrkd.errors import AsrkdError
from asrkd.experiment import layout as L
from asrkd.experiment.layout import Layout
from asrkd.fileio import atomic_write_json, atomic_write_text, read_json

log = logging.getLogger("asrkd.experiment.report")

SYSTEMS = ("baseline", "ensemble", "distilled")
# Default directory (under the experiment dir) of each system of Table 1.
DEFAULT_DIRS = {"baseline": L.BASELINE, "ensemble": L.ENSEMBLE, "distilled": L.STUDENT}
LABELS = {"baseline": "Baseline (one model, hard labels)", "ensemble": "Ensemble of {n} models",
          "distilled": "Distilled single model"}
PLOT_NAME = "temperature_sweep.png"


def _json(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def frame_acc(eval_dir: Path) -> float | None:
    """Frame accuracy (0..1) from ``eval_dir/frame_acc.json``, or None."""
    d = _json(eval_dir / "frame_acc.json")
    return None if d is None else float(d["frame_acc"])


def word_error_rate(eval_dir: Path) -> float | None:
    """WER as a fraction (errors / reference words) from ``eval_dir/wer.json``, or None."""
    d = _json(eval_dir / "wer.json")
    if d is None or not d["wer"].get("ref"):
        return None
    return d["wer"]["errors"] / d["wer"]["ref"]


def decode_rtf(eval_dir: Path) -> float | None:
    d = _json(eval_dir / "wer.json")
    return None if d is None or d.get("decode_rtf") is None else float(d["decode_rtf"])


def checkpoint_params(path: Path) -> int | None:
    """Number of parameters of a checkpoint's model (None if the file is missing)."""
    if not path.is_file():
        return None
    from asrkd.inference.model import load_checkpoint

    return int(sum(t.numel() for t in load_checkpoint(path)["model"].values()))


def member_checkpoints(system_dir: Path) -> list[Path]:
    """Checkpoints a system's evaluation used (several for an ensemble), from frame_acc.json."""
    for s in ("test", "dev"):
        d = _json(L.eval_dir(system_dir, s) / "frame_acc.json")
        if d is not None:
            return [Path(m) for m in d["models"]]
    return []


def _resolve(path: Path, exp_dir: Path) -> Path:
    """Checkpoint paths in frame_acc.json are relative to where the recipe ran (exp's parent)."""
    return path if path.is_absolute() or path.is_file() else exp_dir.parent / path


def system_params(system_dir: Path, exp_dir: Path) -> int | None:
    """Parameters of the system: its checkpoint, else the sum over the checkpoints it evaluated."""
    if (system_dir / L.CHECKPOINT).is_file():
        return checkpoint_params(system_dir / L.CHECKPOINT)
    members = [_resolve(m, exp_dir) for m in member_checkpoints(system_dir)]
    counts = [checkpoint_params(m) for m in members]
    if not counts or any(c is None for c in counts):
        return None
    return int(sum(c for c in counts if c is not None))


def _run_result(run_dir: Path, exp_dir: Path) -> dict[str, Any]:
    """The six numbers of one model or ensemble (None where missing)."""
    dev, test = L.eval_dir(run_dir, "dev"), L.eval_dir(run_dir, "test")
    return {
        "dev_frame_acc": frame_acc(dev),
        "test_frame_acc": frame_acc(test),
        "dev_wer": word_error_rate(dev),
        "test_wer": word_error_rate(test),
        "params": system_params(run_dir, exp_dir),
        "decode_rtf": decode_rtf(test),
    }


def system_runs(exp_dir: Path, name: str) -> list[Path]:
    """The run directories of a system (:meth:`Layout.runs`: its seeds, or ``name`` itself)."""
    return Layout.of_exp(exp_dir).runs(name)


def _epochs(run_dir: Path) -> dict[str, int | None]:
    """Best epoch (0-based) and epochs run, from a trained model's ``metrics.json``."""
    m = _json(run_dir / "metrics.json")
    return {"best_epoch": None if m is None else m.get("best_epoch"),
            "epochs": None if m is None else len(m.get("epochs", []))}


ACC_KEYS = ("dev_frame_acc", "test_frame_acc")
ANY_KEYS = ("dev_wer", "test_wer", "decode_rtf")  # decoded for some seeds only: mean over those


def _mean(values: list[Any], need_all: bool) -> float | None:
    have = [float(v) for v in values if v is not None]
    if not have or (need_all and len(have) < len(values)):
        return None
    return statistics.fmean(have)


def _sd(values: list[Any]) -> float | None:
    """Sample standard deviation over the seeds (None with fewer than 2 or a missing value)."""
    if len(values) < 2 or any(v is None for v in values):
        return None
    return statistics.stdev(float(v) for v in values)


def runs_result(runs: list[Path], exp_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(row, per-run rows, spread) of a system over its runs: frame accuracies are the mean over
    all runs (None if one is missing), WER and RTF the mean over the runs that were decoded."""
    rows = [{"dir": r.name, **_run_result(r, exp_dir), **_epochs(r)} for r in runs]
    row: dict[str, Any] = {k: _mean([r[k] for r in rows], need_all=True) for k in ACC_KEYS}
    row.update({k: _mean([r[k] for r in rows], need_all=False) for k in ANY_KEYS})
    row["params"] = rows[0]["params"]
    row = {k: row[k] for k in ("dev_frame_acc", "test_frame_acc", "dev_wer", "test_wer", "params", "decode_rtf")}
    spread = {"n": len(rows), "decoded": sum(r["test_wer"] is not None for r in rows),
              **{k: _sd([r[k] for r in rows]) for k in ACC_KEYS}}
    return row, rows, spread


def teacher_results(exp_dir: Path, ensemble_dir: Path) -> list[dict[str, Any]]:
    """One row per ensemble member (its checkpoint's directory): dev/test frame accuracy from its
    own ``eval_{dev,test}/``, else the dev accuracy its training kept (``metrics.json``)."""
    rows = []
    for ck in member_checkpoints(ensemble_dir):
        d = _resolve(ck, exp_dir).parent
        dev = frame_acc(L.eval_dir(d, "dev"))
        m = _json(d / "metrics.json")
        if dev is None and m is not None:
            dev = float(m["best_dev_frame_acc"])
        rows.append({"dir": d.name, "dev_frame_acc": dev, "test_frame_acc": frame_acc(L.eval_dir(d, "test")),
                     **_epochs(d)})
    return rows


def baseline_groups(exp_dir: Path, name: str) -> list[tuple[str, list[Path]]]:
    """The baseline kinds of an experiment (:meth:`Layout.baseline_kinds`: ``name`` itself and
    e.g. the recipe's ``baseline_plain``, hard labels on data/train only, next to baselines on
    the augmented transfer set), each with its run directories."""
    lay = Layout.of_exp(exp_dir)
    return [(kind, lay.runs(kind)) for kind in lay.baseline_kinds(name)]


def _train_frames(run_dir: Path) -> int | None:
    """Frames of one training epoch (the size of the data the model was trained on)."""
    m = _json(run_dir / "metrics.json")
    epochs = (m or {}).get("epochs") or []
    return int(epochs[0]["train_frames"]) if epochs and "train_frames" in epochs[0] else None


RunsResult = tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]  # what runs_result returns


def _acc_summary(row: dict[str, Any], spread: dict[str, Any]) -> dict[str, Any]:
    """Mean and sample sd of the dev/test frame accuracy over a system's runs, and their count."""
    return {**{k: row[k] for k in ACC_KEYS}, **{f"{k}_sd": spread[k] for k in ACC_KEYS}, "n": spread["n"]}


def best_baseline(groups: list[tuple[str, list[Path]]], exp_dir: Path) -> tuple[RunsResult, list[dict[str, Any]]]:
    """(:func:`runs_result` of the baseline kind with the best mean dev frame accuracy, one row
    per kind); ``groups`` from :func:`baseline_groups`.

    The fair comparison measures the student's gain against the best baseline, chosen on dev
    (never on test): with an augmented transfer set the baseline trained on the same copies may
    be better or worse than the one trained on the plain training set. A kind whose dev mean is
    missing is never chosen unless every kind's is (then the first, the main kind, stays)."""
    results = [runs_result(runs, exp_dir) for _, runs in groups]
    rows = [{"dir": group, "train_frames": _train_frames(runs[0]), **_acc_summary(row, spread)}
            for (group, runs), (row, _, spread) in zip(groups, results)]
    scored = [i for i, r in enumerate(rows) if r["dev_frame_acc"] is not None]
    best = max(scored, key=lambda i: rows[i]["dev_frame_acc"]) if scored else 0
    for i, r in enumerate(rows):
        r["chosen"] = i == best
    return results[best], rows


def gain_recovered(baseline: float | None, ensemble: float | None, distilled: float | None) -> float | None:
    """Share of the ensemble's frame-accuracy gain over the baseline that the student keeps,
    ``(distilled - baseline) / (ensemble - baseline)``; None when a number is missing or the
    ensemble does not beat the baseline (the share is then meaningless)."""
    if baseline is None or ensemble is None or distilled is None or ensemble <= baseline:
        return None
    return (distilled - baseline) / (ensemble - baseline)


def _train_config(run_dir: Path) -> dict[str, Any]:
    p = run_dir / "config.yaml"
    return (yaml.safe_load(p.read_text(encoding="utf-8")) or {}) if p.is_file() else {}


def temperature_sweep(exp_dir: Path) -> list[dict[str, Any]]:
    """One row per student of the sweep (a directory of ``sweep/`` with a training config; its
    caches have none): T (from that config) and its dev/test numbers, by T."""
    rows = []
    for d in Layout.of_exp(exp_dir).sweep_dirs():
        t = (_train_config(d).get("loss") or {}).get("temperature")
        if t is None:
            continue
        r = _run_result(d, exp_dir)
        rows.append({"T": float(t), **{k: r[k] for k in ("dev_frame_acc", "test_frame_acc", "dev_wer", "test_wer")}})
    return sorted(rows, key=lambda r: r["T"])


def _cache_format(meta: dict[str, Any] | None) -> str | None:
    if meta is None:
        return None
    storage = meta.get("storage")
    return f"{storage} k={meta['k']}" if storage == "topk" else storage


def main_cache_format(exp_dir: Path, student_dir: Path) -> str | None:
    """Storage format of the cache the main students read: the main cache whose T is theirs."""
    t = (_train_config(student_dir).get("loss") or {}).get("temperature")
    for cache in Layout.of_exp(exp_dir).caches():
        d = _json(cache / "meta.json")
        if d is not None and t is not None and float(d.get("T", -1)) == float(t):
            return _cache_format(d)
    return None


def cache_formats(exp_dir: Path, distilled: RunsResult, distilled_runs: list[Path], distilled_dir: str
                  ) -> list[dict[str, Any]]:
    """The main students (``distilled``: their :func:`runs_result`) and each set of students on
    another storage format of the same ensemble's soft targets at the same T (``format/<name>/``):
    mean and spread of their frame accuracy. Empty when none was trained."""
    lay = Layout.of_exp(exp_dir)
    others = lay.format_dirs()
    if not others:
        return []
    rows = [{"format": main_cache_format(exp_dir, distilled_runs[0]), "dir": distilled_dir,
             **_acc_summary(distilled[0], distilled[2])}]
    for d in others:
        name = d.relative_to(lay.exp).as_posix()
        r, _, spread = runs_result(lay.runs(f"{name}/{L.STUDENT}"), exp_dir)
        rows.append({"format": _cache_format(_json(lay.format_cache(d.name) / "meta.json")), "dir": name,
                     **_acc_summary(r, spread)})
    return rows


def _utts(eval_dir: Path) -> tuple[int | None, int | None]:
    d = _json(eval_dir / "frame_acc.json")
    return (None, None) if d is None else (int(d["utts"]), int(d["frames"]))


def small_data(exp_dir: Path, baseline_dir: Path) -> list[dict[str, Any]]:
    """Section 6 rows: hard targets and soft targets on the small subset, the full-data baseline.
    ``train_fraction``: the subset's utterances over the full training set's (as scored)."""
    lay = Layout.of_exp(exp_dir)
    full_utts, _ = _utts(L.eval_dir(baseline_dir, "train"))
    rows = []
    for kind, label in ((L.HARD, "hard targets"), (L.SOFT, "soft targets")):
        d = lay.small_data(kind)
        if not d.is_dir():
            continue
        utts, frames = _utts(L.eval_dir(d, "train"))
        rows.append({"system": label, "train_fraction": utts / full_utts if utts and full_utts else None,
                     "train_utts": utts, "train_frames": frames, "train_frame_acc": frame_acc(L.eval_dir(d, "train")),
                     "test_frame_acc": frame_acc(L.eval_dir(d, "test"))})
    if rows:
        utts, frames = _utts(L.eval_dir(baseline_dir, "train"))
        rows.append({"system": "baseline, all training data", "train_fraction": 1.0 if utts else None,
                     "train_utts": utts, "train_frames": frames,
                     "train_frame_acc": frame_acc(L.eval_dir(baseline_dir, "train")),
                     "test_frame_acc": frame_acc(L.eval_dir(baseline_dir, "test"))})
    return rows


def collect_results(exp_dir: Path, dirs: dict[str, str] | None = None) -> dict[str, Any]:
    """``results.json`` content for ``exp_dir`` (keys: systems, runs, spread, teachers,
    gain_recovered, gain_recovered_dev, temperature_sweep, cache_formats, small_data, baselines).
    The baseline system is the baseline kind with the best mean dev accuracy (:func:`best_baseline`).
    ``dirs``: system -> directory name under ``exp_dir`` (seeds: ``<name>_s<k>``)."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise AsrkdError(f"experiment directory not found: {exp_dir}")
    dirs = {**DEFAULT_DIRS, **(dirs or {})}
    runs = {s: system_runs(exp_dir, dirs[s]) for s in ("ensemble", "distilled")}
    result = {s: runs_result(runs[s], exp_dir) for s in runs}
    groups = baseline_groups(exp_dir, dirs["baseline"])
    result["baseline"], baselines = best_baseline(groups, exp_dir)
    systems = {s: result[s][0] for s in SYSTEMS}
    per_run = {s: result[s][1] for s in SYSTEMS}
    spread = {s: result[s][2] for s in SYSTEMS}
    acc = {s: systems[s]["test_frame_acc"] for s in SYSTEMS}
    dev = {s: systems[s]["dev_frame_acc"] for s in SYSTEMS}
    return {
        "systems": systems,
        "runs": per_run,
        "spread": spread,
        "teachers": teacher_results(exp_dir, runs["ensemble"][0]),
        "gain_recovered": gain_recovered(acc["baseline"], acc["ensemble"], acc["distilled"]),
        "gain_recovered_dev": gain_recovered(dev["baseline"], dev["ensemble"], dev["distilled"]),
        "temperature_sweep": temperature_sweep(exp_dir),
        "cache_formats": cache_formats(exp_dir, result["distilled"], runs["distilled"], dirs["distilled"]),
        "small_data": small_data(exp_dir, _full_data_baseline(groups)),
        "baselines": baselines,
    }


def _full_data_baseline(groups: list[tuple[str, list[Path]]]) -> Path:
    """The first run of the first baseline kind (``groups`` from :func:`baseline_groups`) scored
    on the training set (eval_train/): the section-6 full-data baseline (the recipe scores the
    one trained on data/train)."""
    firsts = [runs[0] for _, runs in groups]
    return next((d for d in firsts if (L.eval_dir(d, "train") / "frame_acc.json").is_file()), firsts[0])


# ---- markdown -------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _params(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def _rtf(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _pct_sd(x: float | None, sd: float | None) -> str:
    """``61.23% ± 0.12`` (mean and sample sd over seeds, in points), ``61.23%`` for one run."""
    return _pct(x) if sd is None or x is None else f"{_pct(x)} ± {100 * sd:.2f}"


def _system_rows(results: dict[str, Any], n: int | None) -> list[list[str]]:
    rows = []
    for s in SYSTEMS:
        r, sp = results["systems"][s], results["spread"][s]
        label = LABELS[s].format(n=n if n else "N")
        if sp["n"] > 1:
            label += f", mean of {sp['n']} seeds"
        rows.append([label, _params(r["params"]), _pct_sd(r["dev_frame_acc"], sp["dev_frame_acc"]),
                     _pct_sd(r["test_frame_acc"], sp["test_frame_acc"]), _pct(r["dev_wer"]), _pct(r["test_wer"]),
                     _rtf(r["decode_rtf"])])
    return rows


def _gain_lines(results: dict[str, Any]) -> list[str]:
    sy = results["systems"]
    lines = []
    for split, key in (("test", "gain_recovered"), ("dev", "gain_recovered_dev")):
        b, e, d = (sy[s][f"{split}_frame_acc"] for s in SYSTEMS)
        gains = "" if None in (b, e, d) else (f" (ensemble {100 * (e - b):+.2f} points over the baseline, "
                                              f"distilled {100 * (d - b):+.2f})")
        lines.append(f"- {split}: **{_pct(results[key])}**{gains}")
    return ["Share of the ensemble's frame-accuracy gain over the baseline recovered by the distilled "
            "model, (distilled - baseline) / (ensemble - baseline) on the means (the paper: 86%):", "", *lines]


def render_markdown(results: dict[str, Any], context: dict[str, Any]) -> str:
    """RESULTS.md: Table 1, the gain recovered, teachers and seeds, the sweep (plot + table),
    the cache formats, section 6."""
    n = context.get("num_teachers")
    lines = [f"# Results: {context.get('title', 'experiment')}", ""]
    if context.get("distilled"):
        lines += [f"Distilled model: {context['distilled']}.", ""]
    lines += ["## Table 1: frame accuracy and word error rate", ""]
    lines += _table(["System", "Parameters", "Dev frame acc", "Test frame acc", "Dev WER", "Test WER",
                     "Decode RTF"], _system_rows(results, n))
    lines += ["", *_gain_lines(results), ""]
    if len(results.get("baselines", [])) > 1:
        lines += ["Baselines (hard labels, teacher size) on different training data; Table 1 uses the "
                  "one with the best mean dev frame accuracy (marked *):", ""]
        lines += _table(["Baseline", "Seeds", "Training frames", "Dev frame acc", "Test frame acc"],
                        [[("* " if r["chosen"] else "") + r["dir"], str(r["n"]),
                          "-" if r["train_frames"] is None else f"{r['train_frames']:,}",
                          _pct_sd(r["dev_frame_acc"], r["dev_frame_acc_sd"]),
                          _pct_sd(r["test_frame_acc"], r["test_frame_acc_sd"])] for r in results["baselines"]])
        lines += [""]
    seeded = [s for s in SYSTEMS if results["spread"][s]["n"] > 1]
    if seeded:
        lines += ["Frame accuracy: mean ± sample standard deviation (points) over the seeds. " +
                  " ".join(f"WER / RTF of the {LABELS[s].split(' (')[0].lower()}: "
                           f"{results['spread'][s]['decoded']} of {results['spread'][s]['n']} seeds decoded."
                           for s in seeded if results["spread"][s]["decoded"] < results["spread"][s]["n"]), ""]
    lines += ["Decode RTF: search time / audio time on the test set (acoustic model excluded).", ""]
    runs = [(s, r) for s in seeded for r in results["runs"][s]]
    teachers = results["teachers"]
    if runs or teachers:
        lines += ["## Every model", ""]
        rows = [[f"{s} ({r['dir']})", _pct(r["dev_frame_acc"]), _pct(r["test_frame_acc"]),
                 "-" if r["best_epoch"] is None else f"{r['best_epoch'] + 1} / {r['epochs']}"]
                for s, r in [("teacher", t) for t in teachers] + runs]
        lines += _table(["Model", "Dev frame acc", "Test frame acc", "Best epoch / epochs run"], rows)
        lines += [""]
    lines += ["## Temperature sweep", ""]
    sweep = results["temperature_sweep"]
    if sweep:
        if context.get("plot"):
            lines += [f"![temperature sweep]({context['plot']})", ""]
        lines += _table(["T", "Dev frame acc", "Test frame acc", "Dev WER", "Test WER"],
                        [[f"{r['T']:g}", _pct(r["dev_frame_acc"]), _pct(r["test_frame_acc"]), _pct(r["dev_wer"]),
                          _pct(r["test_wer"])] for r in sweep])
    else:
        lines += ["Not run (recipe stage 7, `--extra true`)."]
    formats = results["cache_formats"]
    if formats:
        lines += ["", "## Soft-target cache format", "",
                  "The same ensemble at the same T, stored two ways; students of each (mean ± sd over seeds).", ""]
        lines += _table(["Cache", "Students", "Dev frame acc", "Test frame acc"],
                        [[f"{r['format'] or '-'} ({r['dir']})", str(r["n"]), _pct_sd(r["dev_frame_acc"], r["dev_frame_acc_sd"]),
                          _pct_sd(r["test_frame_acc"], r["test_frame_acc_sd"])] for r in formats])
        a, b = formats[0]["test_frame_acc"], formats[1]["test_frame_acc"]
        if a is not None and b is not None:
            lines += ["", f"Test frame accuracy difference ({formats[1]['format']} - {formats[0]['format']}): "
                          f"{100 * (b - a):+.2f} points."]
    lines += ["", "## Soft targets as regularisers (section 6)", ""]
    small = results["small_data"]
    if small:
        lines += _table(["System", "Training data", "Train frame acc", "Test frame acc"],
                        [[r["system"], _pct(r["train_fraction"]) + (f" ({r['train_utts']} utts)" if r["train_utts"] else ""),
                          _pct(r["train_frame_acc"]), _pct(r["test_frame_acc"])] for r in small])
    else:
        lines += ["Not run (recipe stage 8, `--extra true`)."]
    return "\n".join(lines) + "\n"


def _context(exp_dir: Path, dirs: dict[str, str]) -> dict[str, Any]:
    dirs = {**DEFAULT_DIRS, **dirs}
    cfg = _train_config(system_runs(exp_dir, dirs["distilled"])[0])
    loss = cfg.get("loss") or {}
    model = cfg.get("model") or {}
    distilled = None
    if loss:
        distilled = (f"T={loss.get('temperature')}, soft-target weight a={loss.get('soft_weight')}, "
                     f"{model.get('num_layers')} x {model.get('hidden_dim')} {model.get('arch', 'dnn')}")
    members = member_checkpoints(system_runs(exp_dir, dirs["ensemble"])[0])
    return {"title": str(exp_dir.resolve().parent.name) + "/" + exp_dir.name,
            "num_teachers": len(members) or None, "distilled": distilled}


def write_report(exp_dir: Path, out_dir: Path | None = None, dirs: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Write ``RESULTS.md``, ``results.json`` and (with a sweep) the plot into ``out_dir``
    (default ``exp_dir``); returns the results and the markdown."""
    exp_dir = Path(exp_dir)
    out_dir = Path(out_dir) if out_dir is not None else exp_dir
    dirs = dirs or {}
    results = collect_results(exp_dir, dirs)
    context = _context(exp_dir, dirs)
    if results["temperature_sweep"]:
        from asrkd.experiment.report_plot import plot_temperature_sweep

        plot_temperature_sweep(results, out_dir / PLOT_NAME)
        context["plot"] = PLOT_NAME
    md = render_markdown(results, context)
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "RESULTS.md", md)
    log.info("wrote %s and %s", out_dir / "RESULTS.md", out_dir / "results.json")
    return results, md
