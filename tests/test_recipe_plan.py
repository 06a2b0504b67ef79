"""The recipes' experiment design (asrkd/experiment/plan.py) and settings (asrkd recipe-conf):
which data each kind of model trains on, seeds, and what run.sh reads."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from asrkd.cli import main
from asrkd.errors import AsrkdError
from asrkd.experiment.layout import Layout
from asrkd.experiment.plan import STEPS, Job, Recipe, plan_lines, teachers_and_baselines, transfer_set
from asrkd.experiment.recipe import RecipeConfig, load_recipe_config

REPO = Path(__file__).resolve().parents[1]
CONF = Path("/conf")


def _recipe(**settings: object) -> Recipe:
    return Recipe(RecipeConfig(**settings), CONF, 2.0)  # type: ignore[arg-type]


def _argv(job: Job) -> str:
    return " ".join(job.argv)


def _trained(r: Recipe) -> dict[str, str]:
    """--out -> the command line of every model of stage 4."""
    return {j.argv[j.argv.index("--out") + 1]: _argv(j) for j in teachers_and_baselines(r) if isinstance(j, Job)}


@pytest.mark.parametrize("teachers_on_copies", [False, True])
def test_no_transfer_set_means_data_train_for_everyone(teachers_on_copies: bool) -> None:
    r = _recipe(num_teachers=2, num_seeds=2, transfer_copies=0, teachers_on_copies=teachers_on_copies)
    assert r.kd_data == r.teacher_data == Path("data/train") and transfer_set(r) == []
    models = _trained(r)
    assert sorted(models) == ["exp/baseline_s1", "exp/baseline_s2", "exp/teacher_1", "exp/teacher_2"]
    assert all("--feats data/train --labels data/train/labels/ali " in c for c in models.values())


def test_transfer_set_for_baselines_and_students_only() -> None:
    r = _recipe(num_teachers=2, num_seeds=1, baseline_seed=100, transfer_copies=2)
    assert [_argv(j) for j in transfer_set(r)] == [
        "asrkd augment-feats data/train data/train/labels/ali data/train_aug2 --copies 2 --seed 0"]
    models = _trained(r)
    assert "--feats data/train_aug2 --labels data/train_aug2/labels/ali " in models["exp/baseline_s1"]
    # the same baselines on data/train alone (the report compares with the better kind on dev)
    assert "--feats data/train --labels data/train/labels/ali " in models["exp/baseline_plain_s1"]
    assert "--seed 100 " in models["exp/baseline_s1"] and "--seed 100 " in models["exp/baseline_plain_s1"]
    assert all("--feats data/train " in models[f"exp/teacher_{k}"] and f"--seed {k} " in models[f"exp/teacher_{k}"]
               for k in (1, 2))
    students = STEPS["students"](r)
    assert all("--feats data/train_aug2 " in _argv(j) and "--soft-targets exp/cache_T2.0 " in _argv(j)
               for j in students if isinstance(j, Job))


def test_teachers_on_copies_get_their_own_seed() -> None:
    """The teachers' copies are drawn with another seed: the transfer set's copies stay unseen."""
    r = _recipe(num_teachers=1, transfer_copies=1, teachers_on_copies=True)
    assert [_argv(j) for j in transfer_set(r)] == [
        "asrkd augment-feats data/train data/train/labels/ali data/train_aug1 --copies 1 --seed 0",
        "asrkd augment-feats data/train data/train/labels/ali data/train_aug1_teachers --copies 1 --seed 1"]
    assert "--feats data/train_aug1_teachers --labels data/train_aug1_teachers/labels/ali " in _trained(r)["exp/teacher_1"]


def test_every_path_of_the_plan_is_the_layouts() -> None:
    """Models, caches and evaluations are where the report looks for them."""
    r = _recipe(num_teachers=2, num_seeds=2, student_seed=200, transfer_copies=1, sweep_temperatures=(1.0, 2.0),
                cache_format="dense")
    lay = Layout()
    outs = {j.argv[j.argv.index("--out") + 1] for step in STEPS.values() for j in step(r)
            if isinstance(j, Job) and "--out" in j.argv}
    want = {lay.teacher(1), lay.baseline(2), lay.baseline(2, plain=True), lay.student(2), lay.cache(2.0),
            lay.sweep_cache(1.0), lay.sweep_student(1.0), lay.format_cache("topk20"), lay.format_student("topk20", 2),
            lay.small_data("hard"), lay.ensemble / "eval_test", lay.student(2) / "eval_dev",
            lay.baseline(1, plain=True) / "eval_train"}
    assert {str(p) for p in want} <= outs
    # students of seed k use seed student_seed + k - 1; the sweep's students the first seed at their T
    sweep = [_argv(j) for j in STEPS["sweep"](r) if isinstance(j, Job) and j.argv[1] == "train"]
    assert len(sweep) == 2 and all("--seed 200 " in c and f"--set loss.temperature={t} " in c
                                   for c, t in zip(sweep, ("1.0", "2.0")))


def test_plan_lines_are_what_run_plan_reads() -> None:
    r = _recipe(num_teachers=2)
    lines = plan_lines(r, ["evaluation"])
    assert lines[0] == "evaluation begin" and "evaluation wait" in lines
    words = shlex.split(lines[1])
    assert words[:4] == ["evaluation", "pool", "exp/ensemble/eval.log", "asrkd"]
    with pytest.raises(AsrkdError, match="unknown step"):
        plan_lines(r, ["teachers"])


def test_recipe_conf_prints_typed_shell_assignments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "recipe.yaml"
    f.write_text("num_teachers: 3\nsweep_temperatures: [1, 2]\nteachers_on_copies: true\nsynth_preset: it's\n")
    assert main(["recipe-conf", str(f), "--set", "nj=1", "--set", "sweep_temperatures=1 5"]) == 0
    out = capsys.readouterr().out
    assert "nj=1\n" in out and "num_teachers=3\n" in out and "sweep_temperatures='1.0 5.0'\n" in out
    assert "teachers_on_copies=true\n" in out
    env = subprocess.run(["bash", "-c", f'eval "$1"; echo "$synth_preset|$cache_format"', "_", out],
                         capture_output=True, text=True, check=True).stdout
    assert env == "it's|auto\n"  # shell-safe; defaults for what the file leaves out
    assert main(["recipe-conf", str(f), "num_teachers"]) == 0 and capsys.readouterr().out == "3\n"
    f.write_text("num_teachres: 3\n")
    with pytest.raises(AsrkdError, match="valid keys"):
        load_recipe_config(f)
    f.write_text("num_teachers: many\n")
    assert main(["recipe-conf", str(f)]) == 2


def test_every_recipe_conf_loads() -> None:
    """Every conf dir of the repository: its settings and the students' T (from student.yaml)."""
    confs = sorted(p.parent for p in REPO.glob("recipes/*/conf/**/recipe.yaml"))
    assert len(confs) >= 10
    for conf in confs:
        r = Recipe.load(conf)
        assert r.temperature > 0 and r.cfg.num_teachers >= 1, conf
        assert plan_lines(r)[-1] == "report run asrkd report exp"


def test_tied_states_and_the_word_graph_reach_every_consumer() -> None:
    """With triphones in align.yaml, dev/test alignment, the caches and the word graph are made
    on data/lang_tri; WER decodes through data/graph (or the unit n-gram when asked)."""
    tied = Recipe(RecipeConfig(num_teachers=2), CONF, 2.0, tied=True)
    align = [_argv(j) for j in STEPS["alignment"](tied)]
    assert "--tied-lang data/lang_tri data/train data/lang" in align[0]
    assert all(c.endswith("data/lang_tri") for c in align[1:]) and len(align) == 3
    assert [_argv(j) for j in STEPS["graph"](tied)] == [
        "asrkd mkgraph data/lang_tri data/graph --arpa data/lm/lm.arpa --min-state-frames 1"]
    assert "--lang data/lang_tri " in _argv(STEPS["cache"](tied)[0])
    ensemble = [_argv(j) for j in STEPS["evaluation"](tied) if isinstance(j, Job) and "exp/ensemble/" in _argv(j)]
    assert len(ensemble) == 2 and all("--graph data/graph --prior-labels data/train/labels/ali" in c for c in ensemble)
    assert "--dev data/dev" in ensemble[0] and "--decode-config exp/ensemble/eval_dev/decode_config.yaml" in ensemble[1]

    mono = Recipe(RecipeConfig(num_teachers=2, wer_decoder="unit-lm"), CONF, 2.0)
    assert "--tied-lang" not in _argv(STEPS["alignment"](mono)[0]) and STEPS["graph"](mono) == []
    assert "--lang data/lang " in _argv(STEPS["cache"](mono)[0])
    evals = [_argv(j) for j in STEPS["evaluation"](mono) if isinstance(j, Job)]
    assert any("--lang data/lang --train-data data/train" in c for c in evals) and not any("--graph" in c for c in evals)


def test_the_word_graph_takes_the_decoders_minimum_state_duration() -> None:
    """decode.yaml's min_state_frames (yes/no: 3) reaches mkgraph, so the graph's HMMs have the
    unit-LM decoder's minimum duration."""
    yesno = Recipe.load(REPO / "recipes" / "yesno" / "conf")
    assert yesno.min_state_frames == 3
    assert _argv(STEPS["graph"](yesno)[0]).endswith("--min-state-frames 3")


def _cache_jobs(r: Recipe, step: str) -> list[str]:
    return [_argv(j) for j in STEPS[step](r) if isinstance(j, Job) and j.argv[1] == "cache-targets"]


def test_cache_format_auto_is_resolved_by_cache_targets_from_the_inventory() -> None:
    """auto (the default) is handed to cache-targets with its threshold; the other-format step,
    planned before the inventory exists, asks for the format auto does not choose."""
    r = _recipe(num_teachers=2)
    assert r.cfg.cache_format == "auto" and r.cfg.cache_dense_max_classes == 512
    assert "--format auto --dense-max-classes 512 --k 20 " in _cache_jobs(r, "cache")[0]
    (other,) = _cache_jobs(r, "other-format")
    assert "--format other-than-auto --dense-max-classes 512 " in other
    assert other.endswith("--out exp/format/other-than-auto/cache")
    students = [_argv(j) for j in STEPS["other-format"](r) if isinstance(j, Job) and j.argv[1] == "train"]
    assert students and all("--soft-targets exp/format/other-than-auto/cache " in c for c in students)
    assert "--dense-max-classes 1000 " in _cache_jobs(_recipe(cache_dense_max_classes=1000), "cache")[0]
    # An explicit format is kept (no threshold); the other step is the other one.
    dense = _recipe(num_teachers=2, cache_format="dense")
    assert "--format dense --k 20 " in _cache_jobs(dense, "cache")[0]
    assert "--format topk --k 20 " in _cache_jobs(dense, "other-format")[0]
    assert "--format dense --k 20 " in _cache_jobs(_recipe(cache_format="topk"), "other-format")[0]
    with pytest.raises(AsrkdError, match="cache_dense_max_classes"):
        from asrkd.config import from_dict

        from_dict(RecipeConfig, {"cache_dense_max_classes": 0})


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda:1"])
def test_the_device_setting_reaches_train_cache_targets_and_evaluate(device: str) -> None:
    r = _recipe(num_teachers=2, transfer_copies=1, device=device)
    jobs = [j for step in STEPS.values() for j in step(r) if isinstance(j, Job)]
    kinds = {j.argv[1] for j in jobs}
    assert {"train", "cache-targets", "evaluate"} <= kinds
    for j in jobs:
        with_device = j.argv[1] in ("train", "cache-targets", "evaluate")
        assert (f"--device {device} " in _argv(j)) == with_device, _argv(j)
    with pytest.raises(AsrkdError, match="device must be"):
        RecipeConfig(device="gpu")
