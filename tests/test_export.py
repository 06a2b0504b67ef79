"""``asrkd export``: the exported network (TorchScript and ONNX through onnxruntime) gives the
checkpoint's log-posteriors on real features, without asrkd's input pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from asrkd.cli import main
from asrkd.features.cmvn import load_cmvn
from asrkd.inference.export import is_exported, load_exported
from asrkd.inference.forward import frame_log_posteriors
from asrkd.inference.model import load_model
from asrkd.models import ModelConfig, build_model, model_config_dict
from asrkd.train.checkpoint import save_checkpoint

from _feats_fixtures import write_data_dir_for


@pytest.fixture
def real_feats(tmp_path: Path, yesno_wavs: list[Path]) -> tuple[Path, np.ndarray]:
    """Features of a real yes/no recording and a random DNN checkpoint trained on them (CMVN,
    noise floor and a +-3 context window)."""
    d = write_data_dir_for(tmp_path / "data", {f"s-{p.stem}": p for p in yesno_wavs[:2]}, speaker="s")
    assert main(["compute-feats", str(d)]) == 0
    from asrkd.framestore import FrameStore

    store = FrameStore(d / "feats")
    feats = np.asarray(store[store.keys()[0]], dtype=np.float32)
    torch.manual_seed(0)
    cfg = ModelConfig(left_context=3, right_context=2, feat_dim=40, num_layers=2, hidden_dim=64, num_classes=17)
    model = build_model(cfg)
    floor = np.percentile(feats, 20, axis=0).astype(np.float32)
    save_checkpoint(tmp_path / "m.pt", {"kind": "model", "model": model.state_dict(), "model_config": model_config_dict(cfg),
                                        "cmvn": load_cmvn(d)["global"], "noise_floor": floor.tolist(),
                                        "fingerprints": {"feats": "f", "lang": "l"}, "metrics": [], "train_config": {}})
    return tmp_path / "m.pt", feats


@pytest.mark.parametrize("fmt,suffix", [("torchscript", ".ts"), ("onnx", ".onnx")])
def test_exported_model_equals_the_checkpoint(tmp_path: Path, real_feats, fmt: str, suffix: str) -> None:
    ckpt, feats = real_feats
    out = tmp_path / f"m{suffix}"
    assert main(["export", str(ckpt), "--format", fmt, "--out", str(out)]) == 0
    assert is_exported(out) and not is_exported(ckpt)
    ref = frame_log_posteriors(load_model(ckpt), feats, "fp32").numpy()
    exported = load_exported(out)
    got = exported(feats)
    assert got.shape == ref.shape == (feats.shape[0], 17)
    assert np.abs(got - ref).max() < 1e-4
    assert exported.meta["num_classes"] == 17 and exported.meta["fingerprints"] == {"feats": "f", "lang": "l"}
    assert exported(feats[:2]).shape == (2, 17)  # shorter than the context window: edges repeat


def test_torchscript_loads_without_asrkd(tmp_path: Path, real_feats) -> None:
    ckpt, feats = real_feats
    out = tmp_path / "m.ts"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    np.save(tmp_path / "x.npy", feats)
    code = ("import sys, numpy as np, torch; sys.modules['asrkd'] = None; "
            f"m = torch.jit.load({str(out)!r}); y = m(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))); "
            "print(tuple(y.shape))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str((feats.shape[0], 17))


def test_transcribe_with_the_exported_model_equals_the_checkpoint(tmp_path: Path, yesno_wavs: list[Path],
                                                                  capsys: pytest.CaptureFixture) -> None:
    from asrkd.framestore import FrameStore
    from asrkd.lang.inventory import load_lang

    d = write_data_dir_for(tmp_path / "train", {f"s-{p.stem}": p for p in yesno_wavs}, speaker="s")
    (d / "text").write_text("".join(f"s-{p.stem} {' '.join('YES' if c == '1' else 'NO' for c in p.stem.split('_'))}\n"
                                    for p in sorted(yesno_wavs)))
    assert main(["compute-feats", str(d)]) == 0
    assert main(["make-units", str(d), str(tmp_path / "lang"), "--set", "unit_type=grapheme"]) == 0
    lang = load_lang(tmp_path / "lang")
    torch.manual_seed(1)
    cfg = ModelConfig(left_context=2, right_context=2, feat_dim=40, num_layers=1, hidden_dim=32,
                      num_classes=lang.num_classes)
    fp = FrameStore(d / "feats").attrs["fingerprint"]
    save_checkpoint(tmp_path / "m.pt", {"kind": "model", "model": build_model(cfg).state_dict(),
                                        "model_config": model_config_dict(cfg), "cmvn": load_cmvn(d)["global"],
                                        "fingerprints": {"feats": fp, "lang": lang.fingerprint}, "metrics": [],
                                        "train_config": {}})
    assert main(["export", str(tmp_path / "m.pt"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    args = [str(p) for p in yesno_wavs[:2]] + ["--lang", str(tmp_path / "lang"), "--train-data", str(d),
                                               "--precision", "fp32"]
    capsys.readouterr()
    outs = []
    for model in ("m.pt", "m.onnx"):
        assert main(["transcribe", *args, "--model", str(tmp_path / model)]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].count("\n") == 2
