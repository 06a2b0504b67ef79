"""Integrity on every read (issue 19): a damaged store never trains into a finished model, bad
config values are refused before any data is read, and every failure is one ``error:`` line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from asrkd.cli import main

from _kd_fixtures import make_data_dir, teacher_args


@pytest.fixture
def kd_setup(tmp_path: Path) -> Path:
    make_data_dir(tmp_path / "train")
    make_data_dir(tmp_path / "dev", num_utts=8, seed=3)
    assert main(["cache-targets", *teacher_args(tmp_path), "--feats", str(tmp_path / "train"), "--T", "2",
                 "--format", "topk", "--k", "5", "--out", str(tmp_path / "cache")]) == 0
    return tmp_path


def _train(d: Path, out: Path, *extra: str) -> int:
    return main(["train", "--feats", str(d / "train"), "--labels", str(d / "train/labels/ali"),
                 "--dev-feats", str(d / "dev"), "--dev-labels", str(d / "dev/labels/ali"), "--out", str(out),
                 "--set", "model.preset=tiny", "--set", "model.feat_dim=8", "--set", "max_epochs=1",
                 "--set", "data.batch_size=64", *extra])


def _flip(path: Path, at: int, value: bytes | None = None) -> None:
    data = bytearray(path.read_bytes())
    if value is None:
        data[at] ^= 0x10
    else:
        data[at:at + len(value)] = value
    path.write_bytes(bytes(data))


def test_student_on_a_corrupt_cache_part_fails_and_names_the_file(kd_setup: Path, capsys) -> None:
    part = sorted((kd_setup / "cache" / "probs").glob("part-*.bin"))[0]
    _flip(part, part.stat().st_size // 2)
    out = kd_setup / "student"
    assert _train(kd_setup, out, "--soft-targets", str(kd_setup / "cache"), "--set", "loss.soft_weight=0.5",
                  "--set", "loss.temperature=2") == 2
    err = capsys.readouterr().err
    assert "error:" in err and part.name in err and "checksum mismatch" in err
    assert not (out / ".done").exists() and not (out / "final.pt").exists()


def test_student_on_a_nan_target_fails_and_names_the_utterance(kd_setup: Path, capsys) -> None:
    store = kd_setup / "cache" / "probs"
    part = sorted(store.glob("part-*.bin"))[0]
    first_utt = (store / "index.tsv").read_text().split("\n")[0].split()
    assert first_utt[1] == part.name[len("part-"):-len(".bin")] and first_utt[2] == "0"
    _flip(part, 0, np.array([np.nan], np.float16).tobytes())  # the first value of the first utterance
    out = kd_setup / "student"
    assert _train(kd_setup, out, "--soft-targets", str(kd_setup / "cache"), "--set", "loss.soft_weight=0.5",
                  "--set", "loss.temperature=2") == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and first_utt[0] in err
    assert not (out / ".done").exists()


def test_wrong_meta_checksum_is_refused_even_when_T_matches(kd_setup: Path, capsys) -> None:
    meta = kd_setup / "cache" / "meta.json"
    meta.write_text(meta.read_text().replace('"combine": "mean"', '"combine":  "mean"'))
    out = kd_setup / "student"
    assert _train(kd_setup, out, "--soft-targets", str(kd_setup / "cache"), "--set", "loss.soft_weight=0.5",
                  "--set", "loss.temperature=2") == 2
    assert "meta.json does not match" in capsys.readouterr().err
    assert not (out / ".done").exists()


def test_truncated_cache_part_is_a_clear_error(kd_setup: Path, capsys) -> None:
    part = sorted((kd_setup / "cache" / "ids").glob("part-*.bin"))[-1]
    part.write_bytes(part.read_bytes()[:-7])
    assert _train(kd_setup, kd_setup / "student", "--soft-targets", str(kd_setup / "cache"),
                  "--set", "loss.soft_weight=0.5", "--set", "loss.temperature=2") == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "Traceback" not in err


def test_nan_in_features_fails_training_and_names_the_utterance(tmp_path: Path, capsys) -> None:
    make_data_dir(tmp_path / "train")
    make_data_dir(tmp_path / "dev", num_utts=8, seed=3)
    store = tmp_path / "train" / "feats"
    utt, part, offset, _ = (store / "index.tsv").read_text().split("\n")[3].split()
    _flip(store / f"part-{part}.bin", int(offset) * 8 * 4 + 12, np.array([np.nan], np.float32).tobytes())
    out = tmp_path / "teacher"
    assert _train(tmp_path, out) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and utt in err
    assert not (out / ".done").exists()


def test_cache_targets_rerun_over_a_damaged_complete_cache_fails(kd_setup: Path, capsys) -> None:
    part = sorted((kd_setup / "cache" / "tail").glob("part-*.bin"))[0]
    _flip(part, 1)
    assert main(["cache-targets", *teacher_args(kd_setup), "--feats", str(kd_setup / "train"), "--T", "2",
                 "--format", "topk", "--k", "5", "--out", str(kd_setup / "cache")]) == 2
    assert "damaged" in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["optim.lr=-0.001", "loss.soft_weight=1.5", "loss.temperature=0",
                                     "model.dropout=1.0", "data.batch_size=0"])
def test_config_out_of_range_is_refused_before_any_data_is_read(tmp_path: Path, capsys, setting: str) -> None:
    out = tmp_path / "exp"
    rc = main(["train", "--feats", str(tmp_path / "missing"), "--labels", str(tmp_path / "missing/labels"),
               "--dev-feats", str(tmp_path / "missing"), "--dev-labels", str(tmp_path / "missing/labels"),
               "--out", str(out), "--set", setting])
    assert rc == 2
    err = capsys.readouterr().err
    assert "outside the valid range" in err and setting.split("=")[0] in err
    assert not out.exists()


def test_range_in_a_yaml_file_is_checked_too(tmp_path: Path) -> None:
    from asrkd.errors import AsrkdError
    from asrkd.train.config import load_train_config

    (tmp_path / "c.yaml").write_text("optim:\n  lr: -1\n")  # 0 is allowed: frozen weights
    with pytest.raises(AsrkdError, match=r"optim.lr: -1.0 is outside the valid range \[0, inf\).*c.yaml"):
        load_train_config(tmp_path / "c.yaml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_is_an_error_line(tmp_path: Path, capsys) -> None:  # pragma: no cover - non-root only
    make_data_dir(tmp_path / "train")
    make_data_dir(tmp_path / "dev", num_utts=8, seed=3)
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    assert _train(tmp_path, tmp_path / "ro" / "exp") == 2
    assert "error:" in capsys.readouterr().err


def test_os_errors_become_an_error_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """Disk full while writing the outputs (simulated: ENOSPC from the first write)."""
    import errno

    from asrkd import fileio

    make_data_dir(tmp_path / "train")
    make_data_dir(tmp_path / "dev", num_utts=8, seed=3)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "exp" / "config.yaml"))

    monkeypatch.setattr(fileio, "atomic_write_text", full)
    monkeypatch.setattr("asrkd.config.save_config", lambda *a, **k: full())
    import asrkd.train.loop as loop
    monkeypatch.setattr(loop, "save_config", lambda *a, **k: full())
    assert _train(tmp_path, tmp_path / "exp") == 2
    err = capsys.readouterr().err
    assert "error: No space left on device" in err and "Traceback" not in err


def test_malicious_checkpoint_is_refused_without_weights_only_advice(tmp_path: Path, capsys) -> None:
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"format": "asrkd-checkpoint", "x": Evil()}, tmp_path / "evil.pt")
    make_data_dir(tmp_path / "train")
    assert main(["cache-targets", "--model", str(tmp_path / "evil.pt"), "--feats", str(tmp_path / "train"),
                 "--T", "2", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and "weights_only" not in err
    assert not (tmp_path / "pwned").exists()


def test_truncated_last_checkpoint_names_the_way_out(tmp_path: Path, capsys) -> None:
    make_data_dir(tmp_path / "train")
    make_data_dir(tmp_path / "dev", num_utts=8, seed=3)
    out = tmp_path / "exp"
    assert _train(tmp_path, out) == 0
    (out / ".done").unlink()
    last = out / "last.pt"
    if not last.is_file():  # the run may keep only final.pt: make the interrupted state by hand
        (out / "final.pt").rename(last)
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 3])
    assert _train(tmp_path, out) == 2
    err = capsys.readouterr().err
    assert "last.pt" in err and "truncated" in err and "rerun with --force" in err
    assert _train(tmp_path, out, "--force") == 0


@pytest.mark.parametrize("kind", ["pickle", "foreign-npz", "garbage"])
def test_bad_alignment_model_is_an_error_line(tmp_path: Path, capsys, kind: str) -> None:
    import pickle

    model = tmp_path / "m.gmm.npz"
    if kind == "pickle":
        model.write_bytes(pickle.dumps({"class_start": [0, 1]}))
    elif kind == "foreign-npz":
        np.savez(model, weights=np.zeros(3))  # another program's .npz: none of the expected arrays
    else:
        model.write_bytes(b"PK\x03\x04 not really a zip")
    from asrkd.align.gmm import DiagGmm
    from asrkd.errors import AsrkdError

    with pytest.raises(AsrkdError, match="is not an asrkd alignment model"):
        DiagGmm.load(model)


def test_unknown_utterance_in_utt2spk_is_an_error_line(tmp_path: Path, capsys) -> None:
    from asrkd.data.datadir import write_table

    d = tmp_path / "d"
    d.mkdir()
    write_table(d / "wav.scp", {"spk1-a": str(tmp_path / "a.wav")})
    write_table(d / "text", {"spk1-a": "A", "spk1-b": "B"})
    write_table(d / "utt2spk", {"spk1-a": "spk1", "spk1-b": "spk1"})
    write_table(d / "spk2utt", {"spk1": "spk1-a spk1-b"})
    assert main(["compute-feats", str(d)]) == 2
    err = capsys.readouterr().err
    assert "spk1-b" in err and "no recording in wav.scp" in err and "Traceback" not in err
