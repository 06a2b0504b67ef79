"""``asrkd report``: numbers come from the experiment's files, missing ones stay missing."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from asrkd.fileio import atomic_write_json
from asrkd.experiment.layout import Layout
from asrkd.experiment.report import collect_results, gain_recovered, write_report
from asrkd.train.checkpoint import save_checkpoint

SYSTEM_KEYS = {"dev_frame_acc", "test_frame_acc", "dev_wer", "test_wer", "params", "decode_rtf"}


def _checkpoint(path: Path, hidden: int) -> int:
    """A checkpoint with a (hidden x 10 + hidden) parameter state dict; returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {"kind": "model", "model": {"w": torch.zeros(hidden, 10), "b": torch.zeros(hidden)}})
    return hidden * 11


def _eval(d: Path, acc: float, errors: int | None = None, ref: int = 50, rtf: float = 0.02,
          models: list[str] | None = None, utts: int = 10, frames: int = 1000) -> None:
    atomic_write_json(d / "frame_acc.json", {"frame_acc": acc, "frames": frames, "utts": utts,
                                             "models": models or [], "combine": "mean"})
    if errors is not None:
        atomic_write_json(d / "wer.json", {"wer": {"rate": 100.0 * errors / ref, "errors": errors, "ref": ref},
                                           "decode_rtf": rtf})


def _student_config(d: Path, T: float) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"loss": {"temperature": T, "soft_weight": 0.5},
                                                   "model": {"num_layers": 2, "hidden_dim": 8}}))


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    """An experiment dir as the recipe lays it out (run from tmp_path: paths relative to it)."""
    e = tmp_path / "exp"
    p_base = _checkpoint(e / "baseline/final.pt", 8)
    _checkpoint(e / "teacher_1/final.pt", 8)
    _checkpoint(e / "teacher_2/final.pt", 8)
    _checkpoint(e / "student/final.pt", 8)
    _student_config(e / "student", 2.0)
    _eval(e / "baseline/eval_dev", 0.50, 10)
    _eval(e / "baseline/eval_test", 0.60, 12, rtf=0.03)
    members = ["exp/teacher_1/final.pt", "exp/teacher_2/final.pt"]
    _eval(e / "ensemble/eval_dev", 0.55, 9, models=members)
    _eval(e / "ensemble/eval_test", 0.70, 10, models=members)
    _eval(e / "student/eval_dev", 0.54, 9)
    _eval(e / "student/eval_test", 0.68, 11)
    assert p_base == 88
    return e


def test_table_numbers_come_from_the_files(exp: Path) -> None:
    r = collect_results(exp)
    assert set(r) == {"systems", "runs", "spread", "teachers", "gain_recovered", "gain_recovered_dev",
                      "temperature_sweep", "cache_formats", "small_data", "baselines"}
    assert set(r["systems"]) == {"baseline", "ensemble", "distilled"}
    for s in r["systems"].values():
        assert set(s) == SYSTEM_KEYS
    b, e, d = (r["systems"][k] for k in ("baseline", "ensemble", "distilled"))
    assert b["test_frame_acc"] == 0.60 and e["test_frame_acc"] == 0.70 and d["dev_frame_acc"] == 0.54
    assert b["test_wer"] == pytest.approx(12 / 50) and e["dev_wer"] == pytest.approx(9 / 50)  # fractions
    assert b["params"] == d["params"] == 88 and e["params"] == 2 * 88  # the ensemble: sum of members
    assert b["decode_rtf"] == 0.03
    assert r["gain_recovered"] == pytest.approx((0.68 - 0.60) / (0.70 - 0.60))
    assert r["gain_recovered_dev"] == pytest.approx((0.54 - 0.50) / (0.55 - 0.50))
    assert r["temperature_sweep"] == [] and r["small_data"] == [] and r["cache_formats"] == []
    # One run per system: no spread; the teachers are the ensemble's members (no evaluations here).
    assert all(r["spread"][s] == {"n": 1, "decoded": 1, "dev_frame_acc": None, "test_frame_acc": None}
               for s in ("baseline", "ensemble", "distilled"))
    assert [t["dir"] for t in r["teachers"]] == ["teacher_1", "teacher_2"]
    assert all(t["dev_frame_acc"] is None for t in r["teachers"])


def test_missing_pieces_are_null_and_dash(exp: Path, tmp_path: Path) -> None:
    (exp / "student/eval_test/frame_acc.json").unlink()
    (exp / "ensemble/eval_dev/wer.json").unlink()
    results, md = write_report(exp, tmp_path / "out")
    assert results["systems"]["distilled"]["test_frame_acc"] is None
    assert results["systems"]["ensemble"]["dev_wer"] is None
    assert results["gain_recovered"] is None  # not computed from a missing number
    saved = json.loads((tmp_path / "out/results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    row = next(line for line in md.splitlines() if line.startswith("| Distilled"))
    assert row.split("|")[4].strip() == "-"  # test frame acc
    assert "Not run" in md and not (tmp_path / "out/temperature_sweep.png").exists()


def test_gain_recovered_needs_an_ensemble_gain() -> None:
    assert gain_recovered(0.6, 0.7, 0.686) == pytest.approx(0.86)
    assert gain_recovered(0.6, 0.6, 0.65) is None and gain_recovered(0.6, 0.55, 0.65) is None
    assert gain_recovered(None, 0.7, 0.65) is None


def test_sweep_plot_and_small_data(exp: Path) -> None:
    lay = Layout.of_exp(exp)  # where the recipe's steps write (asrkd.experiment.plan)
    for t, acc in ((5.0, 0.66), (1.0, 0.64)):
        d = lay.sweep_student(t)
        _student_config(d, t)
        _eval(d / "eval_dev", acc - 0.1, 10)
        _eval(d / "eval_test", acc, 11)
    lay.sweep_cache(1.0).mkdir()  # caches live there too: not a sweep row
    _eval(exp / "baseline/eval_train", 0.65, utts=100, frames=10_000)
    for name, train_acc, test_acc in (("hard", 0.80, 0.40), ("soft", 0.66, 0.55)):
        _eval(lay.small_data(name) / "eval_train", train_acc, utts=3, frames=300)
        _eval(lay.small_data(name) / "eval_test", test_acc)
    results, md = write_report(exp)
    assert [r["T"] for r in results["temperature_sweep"]] == [1.0, 5.0]  # sorted by T from config.yaml
    assert results["temperature_sweep"][1]["test_frame_acc"] == 0.66
    png = (exp / "temperature_sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    rows = {r["system"]: r for r in results["small_data"]}
    assert rows["hard targets"]["train_fraction"] == pytest.approx(0.03)
    assert rows["soft targets"]["test_frame_acc"] == 0.55
    assert rows["baseline, all training data"]["train_frame_acc"] == 0.65
    assert rows["baseline, all training data"]["test_frame_acc"] == 0.60
    assert "temperature_sweep.png" in md and "| soft targets | 3.00% (3 utts) | 66.00% | 55.00% |" in md


def test_cli_prints_the_table(exp: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "asrkd", "report", "exp"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| Ensemble of 2 models | 0.2k | 55.00% | 70.00% | 18.00% | 20.00% |" in proc.stdout
    assert (exp / "RESULTS.md").read_text() == proc.stdout
    bad = subprocess.run([sys.executable, "-m", "asrkd", "report", "nowhere"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr


def test_seeds_give_mean_and_spread(exp: Path) -> None:
    """baseline_s<k> / student_s<k> replace baseline / student: mean, sample sd, every seed."""
    for name in ("baseline", "student"):
        shutil.rmtree(exp / name)
    base = {1: (0.50, 0.60), 2: (0.52, 0.62), 10: (0.51, 0.58)}  # k=10 sorts after 2: numeric order
    stud = {1: (0.54, 0.68), 2: (0.53, 0.66), 3: (0.55, 0.67)}
    for name, accs in (("baseline", base), ("student", stud)):
        for k, (dev, test) in accs.items():
            d = exp / f"{name}_s{k}"
            _checkpoint(d / "final.pt", 8)
            _student_config(d, 2.0)
            atomic_write_json(d / "metrics.json", {"best_epoch": 6, "epochs": [{}] * 9, "best_dev_frame_acc": dev})
            _eval(d / "eval_dev", dev, 10 if k == 1 else None)  # WER decoded for the first seed only
            _eval(d / "eval_test", test, 12 if k == 1 else None)
    for t, acc in (("teacher_1", 0.51), ("teacher_2", 0.53)):
        _eval(exp / t / "eval_dev", acc)
        _eval(exp / t / "eval_test", acc + 0.1)
    r = collect_results(exp)
    b, d = r["systems"]["baseline"], r["systems"]["distilled"]
    assert b["test_frame_acc"] == pytest.approx(statistics.fmean([0.60, 0.62, 0.58]))
    assert d["dev_frame_acc"] == pytest.approx(0.54)
    assert r["spread"]["baseline"]["test_frame_acc"] == pytest.approx(statistics.stdev([0.60, 0.62, 0.58]))
    assert r["spread"]["distilled"] == {"n": 3, "decoded": 1, "dev_frame_acc": pytest.approx(0.01),
                                        "test_frame_acc": pytest.approx(0.01)}
    assert b["test_wer"] == pytest.approx(12 / 50)  # the mean over the decoded seed(s) only
    assert [x["dir"] for x in r["runs"]["baseline"]] == ["baseline_s1", "baseline_s2", "baseline_s10"]
    assert r["runs"]["distilled"][2]["test_frame_acc"] == 0.67 and r["runs"]["distilled"][0]["best_epoch"] == 6
    assert r["gain_recovered"] == pytest.approx((0.67 - 0.60) / (0.70 - 0.60))
    assert r["gain_recovered_dev"] == pytest.approx((0.54 - 0.51) / (0.55 - 0.51))
    assert [(t["dir"], t["dev_frame_acc"]) for t in r["teachers"]] == [("teacher_1", 0.51), ("teacher_2", 0.53)]
    # A missing seed makes the mean missing rather than a mean over fewer seeds.
    (exp / "student_s2/eval_test/frame_acc.json").unlink()
    results, md = write_report(exp)
    assert results["systems"]["distilled"]["test_frame_acc"] is None and results["gain_recovered"] is None
    assert "| Baseline (one model, hard labels), mean of 3 seeds | 0.1k | 51.00% ± 1.00 | 60.00% ± 2.00 |" in md
    assert "| teacher (teacher_2) | 53.00% | 63.00% | - |" in md and "| baseline (baseline_s10) | 51.00% | 58.00% | 7 / 9 |" in md


def test_cache_format_comparison(exp: Path) -> None:
    """format/<name>/student_s<k>: the other storage format's students against the main ones."""
    lay = Layout.of_exp(exp)  # where the recipe's steps write (asrkd.experiment.plan)
    atomic_write_json(lay.cache(2) / "meta.json", {"T": 2.0, "storage": "dense", "k": None})
    atomic_write_json(lay.format_cache("topk20") / "meta.json", {"T": 2.0, "storage": "topk", "k": 20})
    for k, acc in ((1, 0.675), (2, 0.677)):
        _eval(lay.format_student("topk20", k) / "eval_dev", acc - 0.1)
        _eval(lay.format_student("topk20", k) / "eval_test", acc)
    results, md = write_report(exp)
    main, topk = results["cache_formats"]
    assert (main["format"], main["dir"], main["test_frame_acc"], main["n"]) == ("dense", "student", 0.68, 1)
    assert (topk["format"], topk["n"]) == ("topk k=20", 2) and topk["test_frame_acc"] == pytest.approx(0.676)
    assert topk["test_frame_acc_sd"] == pytest.approx(statistics.stdev([0.675, 0.677]))
    assert "(topk k=20 - dense): -0.40 points" in md


def test_best_baseline_kind_is_chosen_on_dev(exp: Path) -> None:
    """With baseline_s<k> (transfer set) and baseline_plain_s<k> (data/train), Table 1's baseline
    is the kind with the better mean dev accuracy, even when the other is better on test."""
    shutil.rmtree(exp / "baseline")
    kinds = {"baseline": ((0.50, 0.66), (0.52, 0.64), 600), "baseline_plain": ((0.53, 0.60), (0.53, 0.62), 200)}
    for name, (s1, s2, frames) in kinds.items():
        for k, (dev, test) in ((1, s1), (2, s2)):
            d = exp / f"{name}_s{k}"
            _checkpoint(d / "final.pt", 8)
            atomic_write_json(d / "metrics.json", {"best_epoch": 3, "epochs": [{"train_frames": frames}] * 5})
            _eval(d / "eval_dev", dev)
            _eval(d / "eval_test", test)
    _eval(exp / "baseline_plain_s1/eval_train", 0.9)  # the recipe scores the data/train baseline on train
    (exp / "small_data/hard/eval_train").mkdir(parents=True)
    _eval(exp / "small_data/hard/eval_train", 0.95, utts=1)
    _eval(exp / "small_data/hard/eval_test", 0.4)
    results, md = write_report(exp)
    assert [(b["dir"], b["chosen"], b["train_frames"]) for b in results["baselines"]] == [
        ("baseline", False, 600), ("baseline_plain", True, 200)]
    assert results["systems"]["baseline"]["dev_frame_acc"] == pytest.approx(0.53)
    assert results["systems"]["baseline"]["test_frame_acc"] == pytest.approx(0.61)
    assert results["gain_recovered_dev"] == pytest.approx((0.54 - 0.53) / (0.55 - 0.53))
    assert results["gain_recovered"] == pytest.approx((0.68 - 0.61) / (0.70 - 0.61))
    assert [r["dir"] for r in results["runs"]["baseline"]] == ["baseline_plain_s1", "baseline_plain_s2"]
    assert results["small_data"][-1]["train_frame_acc"] == 0.9
    assert "| * baseline_plain | 2 | 200 | 53.00% ± 0.00 | 61.00% ± 1.41 |" in md
    assert "| baseline | 2 | 600 | 51.00% ± 1.41 | 65.00% ± 1.41 |" in md
    # One kind only: no Baselines table, the baseline is that kind.
    for k in (1, 2):
        shutil.rmtree(exp / f"baseline_plain_s{k}")
    results, md = write_report(exp)
    assert len(results["baselines"]) == 1 and results["systems"]["baseline"]["dev_frame_acc"] == pytest.approx(0.51)
    assert "Baselines (hard labels" not in md
