"""Running models over frames (asrkd.inference): device and precision resolution, the one
forward, ensemble combination, and the layering that keeps inference under its users."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _kd_fixtures import FEATS_FP, LANG_FP, make_data_dir, make_teacher
from asrkd.cli import main
from asrkd.data.datadir import feats_dir
from asrkd.errors import AsrkdError
from asrkd.features.cmvn import load_cmvn
from asrkd.framestore import FrameStore
from asrkd.inference import device as dev
from asrkd.inference.ensemble import combine_logits, combine_posteriors, ensemble_posteriors
from asrkd.inference.forward import Scorer, frame_log_posteriors, frame_logits, rows_logits
from asrkd.inference.model import check_models, load_model
from asrkd.inference.window import context_windows

ROOT = Path(__file__).resolve().parents[1]


# ---- device --------------------------------------------------------------------------------

def test_auto_device_is_the_gpu_when_there_is_one_else_the_cpu() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert dev.resolve_device("auto").type == want
    assert dev.resolve_device("cpu") == torch.device("cpu")
    assert dev.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "CPU", "", "cuda:", "cuda:x", "cuda:0:1", "cuda0", "mps", " cpu"])
def test_bad_device_strings_are_rejected(bad: str) -> None:
    with pytest.raises(AsrkdError, match="auto, cpu, cuda, cuda:N"):
        dev.resolve_device(bad)


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AsrkdError, match="CUDA is not available.*--device cpu"):
        dev.resolve_device(spec)
    assert dev.resolve_device("auto") == torch.device("cpu")


def test_cuda_index_beyond_the_gpus_present_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert dev.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert dev.resolve_device("auto") == torch.device("cuda")
    with pytest.raises(AsrkdError, match="2 GPU"):
        dev.resolve_device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "1")  # torchrun: the rank's own GPU
    assert dev.resolve_device("cuda") == torch.device("cuda", 1)


def test_device_option_is_checked_by_the_parser(capsys: pytest.CaptureFixture) -> None:
    for cmd in (["evaluate", "--model", "m.pt", "--feats", "d", "--labels", "l", "--out", "o"],
                ["cache-targets", "--model", "m.pt", "--feats", "d", "--T", "2", "--out", "o"],
                ["train", "--feats", "d", "--labels", "l", "--dev-feats", "d", "--dev-labels", "l", "--out", "o"],
                ["transcribe", "a.wav", "--model", "m.pt", "--lang", "l", "--train-data", "d"]):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--device", "gpu"])
        assert e.value.code == 2
        assert "--device" in capsys.readouterr().err


# ---- precision -----------------------------------------------------------------------------

def test_precision_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    for p in ("bf16", "fp16", "fp32"):
        assert dev.resolve_precision(p, cpu) == dev.resolve_precision(p, gpu) == p
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert dev.resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.resolve_precision("auto", gpu) == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.resolve_precision("auto", gpu) == "bf16"
    with pytest.raises(AsrkdError, match="precision"):
        dev.resolve_precision("int8", cpu)


def test_autocast_lowers_matmuls_only_below_fp32() -> None:
    a = torch.randn(4, 8)
    with dev.autocast("fp32"):
        assert (a @ a.T).dtype == torch.float32
    with dev.autocast("bf16"):
        assert (a @ a.T).dtype == torch.bfloat16
    with pytest.raises(AsrkdError, match="resolve the precision"):
        dev.autocast("auto")


def test_host_tensors_stay_put_on_the_cpu() -> None:
    t = torch.arange(6)
    assert dev.to_device(t, torch.device("cpu")) is t
    assert dev.pin(t, torch.device("cpu")) is t


# ---- ensemble combination ------------------------------------------------------------------

def _members(n: int = 4, frames: int = 7, classes: int = 11, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(frames, classes, generator=g) * 4 for _ in range(n)]


@pytest.mark.parametrize("rule", ["mean", "geometric"])
@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 10.0])
def test_combination_properties(rule: str, T: float) -> None:
    z = _members()
    p = combine_logits(z, T, rule)
    assert p.dtype == torch.float32 and p.shape == z[0].shape
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[0]))
    # The members' order does not matter.
    torch.testing.assert_close(combine_logits(z[::-1], T, rule), p)
    # Logits are defined up to a constant per frame: shifting one member changes nothing.
    shifted = [z[0] + torch.randn(z[0].shape[0], 1) * 50] + z[1:]
    torch.testing.assert_close(combine_logits(shifted, T, rule), p, rtol=1e-4, atol=1e-6)
    # Temperature T is the same as dividing the logits by T.
    torch.testing.assert_close(combine_logits([x / T for x in z], 1.0, rule), p, rtol=1e-5, atol=1e-6)
    # One member, or N copies of it: its tempered softmax.
    one = torch.softmax(z[0] / T, -1)
    torch.testing.assert_close(combine_logits(z[:1], T, rule), one)
    torch.testing.assert_close(combine_logits([z[0]] * 3, T, rule), one)
    # bf16 member logits (autocast) are combined in float32.
    assert combine_logits([x.bfloat16() for x in z], T, rule).dtype == torch.float32


def test_mean_and_geometric_rules() -> None:
    z, T = _members(), 2.0
    probs = torch.stack([torch.softmax(x / T, -1) for x in z])
    mean = combine_logits(z, T, "mean")
    torch.testing.assert_close(mean, probs.mean(0))
    # The mean keeps at least 1/N of every member's probability (no member can veto a class).
    assert (mean >= probs / len(z) - 1e-7).all()
    geo = combine_logits(z, T, "geometric")
    g = probs.log().mean(0).exp()
    torch.testing.assert_close(geo, g / g.sum(-1, keepdim=True))
    # A class that one member all but rules out gets far less from the geometric mean.
    z2 = [x.clone() for x in z]
    z2[0][:, 3] = -1e4
    assert (combine_logits(z2, 1.0, "geometric")[:, 3] < 1e-30).all()
    assert (combine_logits(z2, 1.0, "mean")[:, 3] > 0).all()
    # Evaluation combines log-posteriors at T = 1: the same distribution as the logits.
    lp = [torch.log_softmax(x, -1) for x in z]
    for rule in ("mean", "geometric"):
        torch.testing.assert_close(combine_posteriors(lp, rule), combine_logits(z, 1.0, rule))


def test_combination_refuses_bad_input() -> None:
    z = _members()
    for args, pattern in ((([], 1.0), "no member"), ((z, 0.0), "temperature"), ((z, -1.0), "temperature"),
                          (([z[0], z[1][:, :5]], 1.0), "member 1"), ((z, 1.0, "median"), "unknown rule")):
        with pytest.raises(AsrkdError, match=pattern):
            combine_logits(*args)


# ---- loading and the forward ---------------------------------------------------------------

@pytest.fixture(scope="module")
def kd(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("inference")
    make_data_dir(root / "train")
    cmvn = load_cmvn(root / "train")["global"]
    paths = [root / f"t{i}.pt" for i in range(2)]
    for i, p in enumerate(paths):
        make_teacher(p, cmvn, seed=i)
    return root, paths


def test_forward_is_normalise_window_model(kd) -> None:
    root, paths = kd
    m = load_model(paths[0], "cpu")
    assert m.device == torch.device("cpu") and not m.module.training
    assert (m.config.left_context, m.config.right_context, m.config.num_classes) == (2, 1, 30)
    assert m.info == {"path": str(paths[0]), "sha256": hashlib.sha256(paths[0].read_bytes()).hexdigest()}
    store = FrameStore(root / "train" / "feats")
    f = np.array(store[store.keys()[0]])
    with torch.no_grad():
        ref = m.module(torch.from_numpy(context_windows(m.normalize(f), 2, 1)))
    got = frame_logits(m, f, "fp32")
    assert got.dtype == torch.float32 and got.shape == (f.shape[0], 30)
    torch.testing.assert_close(got, ref)
    # Batching inside the utterance, the chunk-rows entry point and the cache's callable agree.
    torch.testing.assert_close(frame_logits(m, f, "fp32", batch_frames=5), got)
    n = f.shape[0]
    rows = np.arange(n)
    torch.testing.assert_close(rows_logits(m, f, rows, np.zeros(n, np.int64), np.full(n, n), "fp32"), got)
    assert torch.equal(Scorer(m, "fp32")(torch.from_numpy(f)), got)
    torch.testing.assert_close(frame_log_posteriors(m, f, "fp32"), torch.log_softmax(ref, -1))
    assert frame_logits(m, f[:0], "fp32").shape == (0, 30)
    # bf16 autocast is close to fp32 and runs through the same path.
    torch.testing.assert_close(frame_logits(m, f, "bf16"), got, rtol=0.1, atol=0.5)
    # An ensemble's posteriors are distributions.
    post = ensemble_posteriors([m, load_model(paths[1])], f, "geometric", "fp32")
    np.testing.assert_allclose(post.sum(-1), 1.0, rtol=1e-5)


def test_check_models(kd) -> None:
    _, paths = kd
    a, b = load_model(paths[0]), load_model(paths[1])
    assert check_models([a, b], FEATS_FP, LANG_FP) == (30, LANG_FP)
    with pytest.raises(AsrkdError, match="no model"):
        check_models([])
    with pytest.raises(AsrkdError, match="label inventory"):
        check_models([a], FEATS_FP, "another")
    with pytest.raises(AsrkdError, match="features"):
        check_models([a], "other-features")
    other = dataclasses.replace(b, meta={**b.meta, "fingerprints": {"lang": "x"}})
    with pytest.raises(AsrkdError, match="different label inventories"):
        check_models([a, other])


def test_feats_dir_takes_a_data_dir_or_the_store(kd) -> None:
    root, _ = kd
    assert feats_dir(root / "train") == root / "train" / "feats"
    assert feats_dir(root / "train" / "feats") == root / "train" / "feats"
    assert feats_dir(root / "new") == root / "new" / "feats"  # a writer's target


# ---- the commands: --device cpu is the default here ------------------------------------------

def _tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and not p.name.endswith(".done")}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the default device is the GPU here")
def test_device_cpu_equals_the_default_for_evaluate_and_cache_targets(kd, tmp_path: Path) -> None:
    root, paths = kd
    models = sum((["--model", str(p)] for p in paths), [])
    data = ["--feats", str(root / "train")]
    for extra in ([], ["--device", "cpu"]):
        out = tmp_path / ("cpu" if extra else "default")
        assert main(["evaluate", *models, *data, "--labels", str(root / "train/labels/ali"),
                     "--combine", "geometric", "--out", str(out / "eval"), *extra]) == 0
        assert main(["cache-targets", *models, *data, "--T", "2", "--k", "5", "--shard-frames", "200",
                     "--out", str(out / "cache"), *extra]) == 0
    ev = [json.loads((tmp_path / d / "eval" / "frame_acc.json").read_text()) for d in ("default", "cpu")]
    assert ev[0] == ev[1] and ev[0]["frames"] > 0
    assert _tree(tmp_path / "default" / "cache") == _tree(tmp_path / "cpu" / "cache")


# ---- layering ------------------------------------------------------------------------------

def _imports(package: str) -> set[str]:
    """Every asrkd module imported anywhere (top level or inside functions) by ``package``."""
    out = set()
    for p in (ROOT / "asrkd" / package).rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("asrkd."):
                out.add(n.module)
            elif isinstance(n, ast.Import):
                out |= {a.name for a in n.names if a.name.startswith("asrkd.")}
    return out


@pytest.mark.parametrize("package,forbidden", [
    ("inference", ("train", "softtargets", "evaluation", "decode", "align", "commands", "cli")),
    ("decode", ("train", "softtargets", "commands", "cli")),
    ("evaluation", ("train", "softtargets", "decode", "commands", "cli")),
    ("softtargets", ("train", "evaluation", "decode", "commands", "cli")),
])
def test_inference_sits_under_its_users(package: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted(m for m in _imports(package) if m.split(".")[1] in forbidden)
    assert not bad, f"asrkd/{package} imports {bad}"
