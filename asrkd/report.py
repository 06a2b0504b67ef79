"""The results of an experiment directory: the paper's Table 1, the temperature sweep and the
section-6 (small data) table, as ``RESULTS.md`` + ``results.json`` (+ a PNG of the sweep).

Everything is read from what the recipe's steps wrote (layout in ``recipes/README.md``):

- a system directory (``baseline``, ``ensemble``, ``student``) holds ``eval_dev/`` and
  ``eval_test/`` from ``asrkd evaluate`` (``frame_acc.json``, ``wer.json``); single models also
  hold ``final.pt`` (parameters are counted from it; an ensemble's are the sum over the
  checkpoints its ``frame_acc.json`` lists);
- ``sweep/T<T>/``: students at other temperatures (T is read from their ``config.yaml``);
- ``small_data/{hard,soft}/``: models trained on a fraction of the training set, with
  ``eval_train/`` (that subset) and ``eval_test/``; ``baseline/eval_train/`` is the full-data
  baseline's training-set accuracy.

Nothing is invented: a number whose file is missing is ``None`` in ``results.json`` and ``-`` in
the markdown. Fractions (accuracies, WER) are in 0..1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, atomic_write_text, read_json

log = logging.getLogger("asrkd.report")

SYSTEMS = ("baseline", "ensemble", "distilled")
# Default directory (under the experiment dir) of each system of Table 1.
DEFAULT_DIRS = {"baseline": "baseline", "ensemble": "ensemble", "distilled": "student"}
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
    from asrkd.train.checkpoint import load_checkpoint

    return int(sum(t.numel() for t in load_checkpoint(path)["model"].values()))


def member_checkpoints(system_dir: Path) -> list[Path]:
    """Checkpoints a system's evaluation used (several for an ensemble), from frame_acc.json."""
    for s in ("test", "dev"):
        d = _json(system_dir / f"eval_{s}" / "frame_acc.json")
        if d is not None:
            return [Path(m) for m in d["models"]]
    return []


def _resolve(path: Path, exp_dir: Path) -> Path:
    """Checkpoint paths in frame_acc.json are relative to where the recipe ran (exp's parent)."""
    return path if path.is_absolute() or path.is_file() else exp_dir.parent / path


def system_params(system_dir: Path, exp_dir: Path) -> int | None:
    """Parameters of the system: its final.pt, else the sum over the checkpoints it evaluated."""
    if (system_dir / "final.pt").is_file():
        return checkpoint_params(system_dir / "final.pt")
    members = [_resolve(m, exp_dir) for m in member_checkpoints(system_dir)]
    counts = [checkpoint_params(m) for m in members]
    if not counts or any(c is None for c in counts):
        return None
    return int(sum(c for c in counts if c is not None))


def system_result(system_dir: Path, exp_dir: Path) -> dict[str, Any]:
    """The six numbers of one Table-1 row (None where missing)."""
    dev, test = system_dir / "eval_dev", system_dir / "eval_test"
    return {
        "dev_frame_acc": frame_acc(dev),
        "test_frame_acc": frame_acc(test),
        "dev_wer": word_error_rate(dev),
        "test_wer": word_error_rate(test),
        "params": system_params(system_dir, exp_dir),
        "decode_rtf": decode_rtf(test),
    }


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
    """One row per ``sweep/*/`` student that has a config: T and its dev/test numbers, by T."""
    rows = []
    root = exp_dir / "sweep"
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        t = (_train_config(d).get("loss") or {}).get("temperature")
        if not d.is_dir() or t is None:
            continue
        r = system_result(d, exp_dir)
        rows.append({"T": float(t), **{k: r[k] for k in ("dev_frame_acc", "test_frame_acc", "dev_wer", "test_wer")}})
    return sorted(rows, key=lambda r: r["T"])


def _utts(eval_dir: Path) -> tuple[int | None, int | None]:
    d = _json(eval_dir / "frame_acc.json")
    return (None, None) if d is None else (int(d["utts"]), int(d["frames"]))


def small_data(exp_dir: Path, baseline_dir: Path) -> list[dict[str, Any]]:
    """Section 6 rows: hard targets and soft targets on the small subset, the full-data baseline.
    ``train_fraction``: the subset's utterances over the full training set's (as scored)."""
    root = exp_dir / "small_data"
    full_utts, _ = _utts(baseline_dir / "eval_train")
    rows = []
    for name, label in (("hard", "hard targets"), ("soft", "soft targets")):
        d = root / name
        if not d.is_dir():
            continue
        utts, frames = _utts(d / "eval_train")
        rows.append({"system": label, "train_fraction": utts / full_utts if utts and full_utts else None,
                     "train_utts": utts, "train_frames": frames,
                     "train_frame_acc": frame_acc(d / "eval_train"), "test_frame_acc": frame_acc(d / "eval_test")})
    if rows:
        utts, frames = _utts(baseline_dir / "eval_train")
        rows.append({"system": "baseline, all training data", "train_fraction": 1.0 if utts else None,
                     "train_utts": utts, "train_frames": frames,
                     "train_frame_acc": frame_acc(baseline_dir / "eval_train"),
                     "test_frame_acc": frame_acc(baseline_dir / "eval_test")})
    return rows


def collect_results(exp_dir: Path, dirs: dict[str, str] | None = None) -> dict[str, Any]:
    """``results.json`` content for ``exp_dir`` (keys: systems, gain_recovered,
    temperature_sweep, small_data). ``dirs``: system -> directory name under ``exp_dir``."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise AsrkdError(f"experiment directory not found: {exp_dir}")
    dirs = {**DEFAULT_DIRS, **(dirs or {})}
    systems = {s: system_result(exp_dir / dirs[s], exp_dir) for s in SYSTEMS}
    acc = {s: systems[s]["test_frame_acc"] for s in SYSTEMS}
    return {
        "systems": systems,
        "gain_recovered": gain_recovered(acc["baseline"], acc["ensemble"], acc["distilled"]),
        "temperature_sweep": temperature_sweep(exp_dir),
        "small_data": small_data(exp_dir, exp_dir / dirs["baseline"]),
    }


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


def render_markdown(results: dict[str, Any], context: dict[str, Any]) -> str:
    """RESULTS.md: Table 1, the gain recovered, the sweep (plot + table), section 6."""
    n = context.get("num_teachers")
    lines = [f"# Results: {context.get('title', 'experiment')}", ""]
    if context.get("distilled"):
        lines += [f"Distilled model: {context['distilled']}.", ""]
    lines += ["## Table 1: frame accuracy and word error rate", ""]
    rows = []
    for s in SYSTEMS:
        r = results["systems"][s]
        rows.append([LABELS[s].format(n=n if n else "N"), _params(r["params"]), _pct(r["dev_frame_acc"]),
                     _pct(r["test_frame_acc"]), _pct(r["dev_wer"]), _pct(r["test_wer"]), _rtf(r["decode_rtf"])])
    lines += _table(["System", "Parameters", "Dev frame acc", "Test frame acc", "Dev WER", "Test WER",
                     "Decode RTF"], rows)
    g = results["gain_recovered"]
    lines += ["", "Share of the ensemble's test frame-accuracy gain over the baseline recovered by the "
              f"distilled model: **{_pct(g)}** (the paper: 86%).", "",
              "Decode RTF: search time / audio time on the test set (acoustic model excluded).", ""]
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
    cfg = _train_config(exp_dir / dirs["distilled"])
    loss = cfg.get("loss") or {}
    model = cfg.get("model") or {}
    distilled = None
    if loss:
        distilled = (f"T={loss.get('temperature')}, soft-target weight a={loss.get('soft_weight')}, "
                     f"{model.get('num_layers')} x {model.get('hidden_dim')} {model.get('arch', 'dnn')}")
    members = member_checkpoints(exp_dir / dirs["ensemble"])
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
        from asrkd.report_plot import plot_temperature_sweep

        plot_temperature_sweep(results, out_dir / PLOT_NAME)
        context["plot"] = PLOT_NAME
    md = render_markdown(results, context)
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "RESULTS.md", md)
    log.info("wrote %s and %s", out_dir / "RESULTS.md", out_dir / "results.json")
    return results, md
