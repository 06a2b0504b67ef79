"""The config system: defaults, YAML values, unknown keys, type-checked --set, YAML round trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from asrkd.config import load_config, save_config, to_dict
from asrkd.errors import AsrkdError
from asrkd.features.fbank import FeatureConfig


@dataclass(frozen=True)
class _Model:
    hidden_dim: int = 256  # units
    dropout: float = 0.1  # probability
    kind: str = "dnn"  # registry name


@dataclass(frozen=True)
class _Exp:
    lr: float = 0.01  # learning rate
    layers: tuple[int, ...] = (1, 2)  # sizes
    model: _Model = field(default_factory=_Model)  # nested section


def test_defaults_without_file():
    assert load_config(FeatureConfig) == FeatureConfig()


def test_yaml_values_and_nested_section(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lr: 1\nmodel:\n  hidden_dim: 1024\n")
    cfg = load_config(_Exp, p)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)  # int accepted for a float field
    assert cfg.model == _Model(hidden_dim=1024)


@pytest.mark.parametrize("text, bad", [("num_mel_bin: 40\n", "num_mel_bin"), ("nope: 1\n", "nope")])
def test_unknown_yaml_key_lists_valid_keys(tmp_path, text, bad):
    p = tmp_path / "f.yaml"
    p.write_text(text)
    with pytest.raises(AsrkdError) as e:
        load_config(FeatureConfig, p)
    msg = str(e.value)
    assert bad in msg and "num_mel_bins" in msg and "frame_shift_ms" in msg  # valid keys listed


def test_unknown_nested_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  hidden: 3\n")
    with pytest.raises(AsrkdError, match="hidden_dim"):
        load_config(_Exp, p)


def test_set_overrides_are_type_checked():
    cfg = load_config(FeatureConfig, None, ["num_mel_bins=80", "frame_shift_ms=20", "snip_edges=false"])
    assert (cfg.num_mel_bins, cfg.frame_shift_ms, cfg.snip_edges) == (80, 20.0, False)
    for bad in ["num_mel_bins=abc", "num_mel_bins=40.5", "snip_edges=3", "window=square", "low_freq=[1]"]:
        with pytest.raises(AsrkdError):
            load_config(FeatureConfig, None, [bad])
    with pytest.raises(AsrkdError, match="valid keys"):
        load_config(FeatureConfig, None, ["num_mels=3"])
    with pytest.raises(AsrkdError, match="key=value"):
        load_config(FeatureConfig, None, ["num_mel_bins"])


def test_set_nested_and_section_errors():
    cfg = load_config(_Exp, None, ["model.hidden_dim=7", "layers=[3, 4, 5]", "model.kind=123"])
    assert cfg.model.hidden_dim == 7 and cfg.layers == (3, 4, 5)
    assert cfg.model.kind == "123"  # a string field keeps the text
    with pytest.raises(AsrkdError, match="not a section"):
        load_config(_Exp, None, ["lr.x=1"])
    with pytest.raises(AsrkdError, match="dropout"):
        load_config(_Exp, None, ["model.drop=0.5"])


def test_yaml_round_trip(tmp_path):
    cfg = load_config(_Exp, None, ["model.dropout=0.25", "lr=0.5"])
    save_config(cfg, tmp_path / "r.yaml")
    assert load_config(_Exp, tmp_path / "r.yaml") == cfg
    fc = FeatureConfig(num_mel_bins=23, window="hamming")
    save_config(fc, tmp_path / "f.yaml")
    assert load_config(FeatureConfig, tmp_path / "f.yaml") == fc
    assert yaml.safe_load((tmp_path / "f.yaml").read_text()) == to_dict(fc)


def test_fingerprint_tracks_every_field():
    base = FeatureConfig().fingerprint()
    assert base == FeatureConfig().fingerprint()
    assert len({base, FeatureConfig(num_mel_bins=41).fingerprint(), FeatureConfig(low_freq=21).fingerprint()}) == 3


@dataclass(frozen=True)
class _Betas:
    betas: tuple[float, float] = (0.9, 0.999)  # Adam decay rates


def test_fixed_length_tuple_field(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text("betas: [0.8, 0.99]\n")
    assert load_config(_Betas, p).betas == (0.8, 0.99)
    assert load_config(_Betas, None, ["betas=[1, 0.5]"]).betas == (1.0, 0.5)
    with pytest.raises(AsrkdError, match="expected 2 items"):
        load_config(_Betas, None, ["betas=[0.1]"])
    with pytest.raises(AsrkdError, match="number"):
        load_config(_Betas, None, ["betas=[a, 0.5]"])


def test_every_recipe_train_config_loads() -> None:
    """Every recipe conf dir's teacher.yaml / student.yaml is a valid TrainConfig (an unknown key
    or a wrong type fails here, not an hour into a recipe run)."""
    from pathlib import Path

    from asrkd.train.config import load_train_config

    confs = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*/conf/**/*.yaml"))
    train_confs = [p for p in confs if p.name in ("teacher.yaml", "student.yaml")]
    assert len(train_confs) >= 10
    for p in train_confs:
        cfg = load_train_config(p, [])
        assert cfg.max_epochs > 0, p
        if p.name == "student.yaml":
            assert 0.0 < cfg.loss.soft_weight <= 1.0 and cfg.loss.temperature > 0, p


def test_scientific_notation_without_a_dot_is_a_number_in_float_fields(tmp_path) -> None:
    """PyYAML reads 1e-7 as a string (YAML 1.1); a float field takes it as the number."""
    from asrkd.train.config import load_train_config

    (tmp_path / "c.yaml").write_text("optim:\n  lr: 3e-4\n  eps: 1E-8\n")
    cfg = load_train_config(tmp_path / "c.yaml", ["schedule.min_lr=1e-6"])
    assert (cfg.optim.lr, cfg.optim.eps, cfg.schedule.min_lr) == (3e-4, 1e-8, 1e-6)


@dataclass(frozen=True)
class _Switch:
    mode: Literal["auto", "off"] = "auto"  # a string choice that YAML 1.1 would read as a boolean


def test_unquoted_off_is_the_word_among_string_choices(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("mode: off\n")  # YAML 1.1: False
    assert load_config(_Switch, p).mode == "off"
    assert load_config(_Switch, None, ["mode=off"]).mode == "off"
    save_config(_Switch(mode="off"), tmp_path / "r.yaml")
    assert load_config(_Switch, tmp_path / "r.yaml").mode == "off"
    with pytest.raises(AsrkdError, match="not one of"):
        load_config(_Switch, None, ["mode=on"])  # True: "on" is no choice here
