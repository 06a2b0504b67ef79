"""Model registry, presets, config layering, and rebuilding a model from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asrkd.errors import AsrkdError
from asrkd.models import (PRESETS, ModelConfig, build_model, count_params, forward_flops_per_frame,
                          model_config_dict, model_config_from_dict, with_num_classes)
from asrkd.train.config import load_train_config


def test_hinton2015_preset_matches_the_paper():
    cfg = load_train_config(None, ["model.preset=hinton2015"]).model
    assert (cfg.left_context, cfg.right_context, cfg.window, cfg.feat_dim) == (20, 5, 26, 40)
    assert (cfg.num_layers, cfg.hidden_dim) == (8, 2560)
    # 14,000 tied states in the paper: "about 85M parameters".
    n = 26 * 40 * 2560 + 2560 + 7 * (2560 * 2560 + 2560) + 2560 * 14000 + 14000
    assert 84e6 < n < 86e6
    small = with_num_classes(cfg, 14000)
    assert forward_flops_per_frame(small) == 2 * (n - 2560 * 8 - 14000)


def test_forward_shape_and_param_count():
    cfg = with_num_classes(ModelConfig(**PRESETS["tiny"]), 7)
    m = build_model(cfg)
    x = torch.randn(11, cfg.window, cfg.feat_dim)
    assert m(x).shape == (11, 7)
    d = cfg.window * cfg.feat_dim
    assert count_params(m) == d * 32 + 32 + 32 * 32 + 32 + 32 * 7 + 7
    with pytest.raises(AssertionError):
        m(torch.randn(11, cfg.window + 1, cfg.feat_dim))


def test_config_layers_preset_yaml_set(tmp_path: Path):
    y = tmp_path / "t.yaml"
    y.write_text("model:\n  preset: cpu\n  hidden_dim: 300\n")
    cfg = load_train_config(y, [])
    assert cfg.model.hidden_dim == 300 and cfg.model.left_context == 20  # yaml over preset
    cfg = load_train_config(y, ["model.hidden_dim=64"])
    assert cfg.model.hidden_dim == 64  # --set over yaml
    with pytest.raises(AsrkdError, match="unknown model preset"):
        load_train_config(None, ["model.preset=nope"])
    with pytest.raises(AsrkdError, match="valid keys"):
        load_train_config(None, ["model.hiden_dim=3"])


def test_num_classes_and_arch_checks():
    cfg = ModelConfig(**PRESETS["tiny"])
    with pytest.raises(AsrkdError, match="num_classes"):
        build_model(cfg)
    with pytest.raises(AsrkdError, match="5 classes"):
        with_num_classes(with_num_classes(cfg, 3), 5)
    with pytest.raises(AsrkdError, match="unknown model arch"):
        build_model(ModelConfig(arch="lstm", num_classes=3))


def test_rebuilt_from_plain_config_and_state(tmp_path: Path):
    cfg = with_num_classes(ModelConfig(**PRESETS["tiny"], dropout=0.1), 4)
    torch.manual_seed(0)
    m = build_model(cfg)
    path = tmp_path / "m.pt"
    torch.save({"cfg": model_config_dict(cfg), "state": m.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)  # plain data only
    m2 = build_model(model_config_from_dict(loaded["cfg"]))
    m2.load_state_dict(loaded["state"])
    m.eval(), m2.eval()
    x = torch.randn(5, cfg.window, cfg.feat_dim)
    assert torch.equal(m(x), m2(x))


def test_fused_layers_match_plain_autograd():
    cfg = with_num_classes(ModelConfig(**{**PRESETS["tiny"], "num_layers": 3}), 7)
    torch.manual_seed(0)
    m = build_model(cfg).double()
    x = torch.randn(30, cfg.window, cfg.feat_dim, dtype=torch.float64, requires_grad=True)

    def plain(x):
        h = x.reshape(30, -1)
        for i, (w, b) in enumerate(zip(m.weights, m.biases)):
            h = h @ w + b
            h = torch.relu(h) if i < cfg.num_layers else h
        return h

    params = list(m.parameters()) + [x]
    got = torch.autograd.grad(m(x).square().sum(), params)
    want = torch.autograd.grad(plain(x).square().sum(), params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
    # Under bf16 autocast: bf16 compute, fp32 gradients for the fp32 master weights.
    m = m.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x.detach().float())
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in m.parameters())
