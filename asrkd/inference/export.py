"""A deployable acoustic model: the network with its input normalisation and context window
baked in, as TorchScript or ONNX, loadable without asrkd.

The exported graph takes one utterance's *stored* features ``feats: (frames, F)`` float32 (the
log-mel filterbanks ``asrkd compute-feats`` writes) and returns ``(frames, C)`` float32
log-posteriors, doing exactly what :func:`asrkd.inference.forward.frame_log_posteriors` does:
the noise floor ``log(exp(x) + exp(floor))`` (if the model has one), CMVN with the training
set's global stats, the context window with the edge frames repeated, the DNN, log-softmax.
Weights are exported in fp32 (the graph runs in fp32 anywhere).

Metadata travels inside the file (TorchScript ``_extra_files['asrkd.json']``, ONNX
``metadata_props['asrkd']``): format, class count, feature dimension, context, and the
checkpoint's fingerprints, so a decoder can check the lang and feature config it is used with.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from asrkd.errors import AsrkdError
from asrkd.features.cmvn import mean_std
from asrkd.inference.model import InferenceModel
from asrkd.models import ModelConfig, model_config_dict, model_config_from_dict

log = logging.getLogger("asrkd.inference.export")

FORMAT = "asrkd-exported-am"
FORMATS = ("torchscript", "onnx")
META_KEY = "asrkd"


class _Layer(torch.nn.Module):
    """``relu?(h @ w + b)`` in fp32: ``w (in, out)``, ``b (out,)``."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor, relu: bool):
        super().__init__()
        self.register_buffer("w", w.detach().float().cpu().clone())
        self.register_buffer("b", b.detach().float().cpu().clone())
        self.relu = relu

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = torch.addmm(self.b, h, self.w)
        return torch.relu(z) if self.relu else z


class DeployableDnn(torch.nn.Module):
    """``forward(feats: (frames, F)) -> (frames, C)`` log-posteriors (see module docstring).

    Plain tensor ops only (no custom autograd function, no logaddexp, which ONNX lacks), so that
    TorchScript and ONNX capture it."""

    def __init__(self, model: InferenceModel):
        super().__init__()
        cfg = model.config
        f = cfg.feat_dim
        floor = model.noise_floor
        self.has_floor = floor is not None
        self.register_buffer("floor", torch.as_tensor(floor if floor is not None else np.zeros(f), dtype=torch.float32))
        mean, std = mean_std(model.cmvn) if model.cmvn is not None else (np.zeros(f), np.ones(f))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.register_buffer("offsets", torch.arange(-cfg.left_context, cfg.right_context + 1, dtype=torch.long))
        ws, bs = list(model.module.weights), list(model.module.biases)
        self.layers = torch.nn.ModuleList([_Layer(w, b, i < len(ws) - 1) for i, (w, b) in enumerate(zip(ws, bs))])
        self.window_dim = cfg.window * f

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats
        if self.has_floor:  # log(exp(x) + exp(floor)), written out: ONNX has no logaddexp
            m = torch.maximum(x, self.floor)
            x = m + torch.log1p(torch.exp(-torch.abs(x - self.floor)))
        x = (x - self.mean) / self.std
        n = x.shape[0]
        idx = torch.arange(n, device=x.device).unsqueeze(1) + self.offsets.unsqueeze(0)  # (frames, W)
        idx = torch.clamp(idx, torch.zeros_like(idx), torch.full_like(idx, n - 1))  # edges repeat the end frames
        h = x[idx].reshape(n, self.window_dim)  # (frames, W * F)
        for layer in self.layers:
            h = layer(h)
        return torch.log_softmax(h, dim=-1)


def export_meta(model: InferenceModel) -> dict[str, Any]:
    cfg = model.config
    return {"format": FORMAT, "version": 1, "num_classes": cfg.num_classes, "model_config": model_config_dict(cfg),
            "fingerprints": model.fingerprints, "source": str(model.path)}


def export_model(model: InferenceModel, out: Path, fmt: str) -> Path:
    """Write ``model`` as ``fmt`` (torchscript | onnx) to ``out`` (atomically); returns ``out``."""
    from asrkd.fileio import atomic_write_bytes

    if fmt not in FORMATS:
        raise AsrkdError(f"unknown export format {fmt!r}; one of {list(FORMATS)}")
    if type(model.module).__name__ != "DNN":
        raise AsrkdError(f"export supports the dnn architecture, not {type(model.module).__name__}")
    net = DeployableDnn(model).eval()
    meta = json.dumps(export_meta(model), sort_keys=True)
    example = torch.zeros(7, model.config.feat_dim)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if fmt == "torchscript":
        scripted = torch.jit.script(net)
        torch.jit.save(scripted, str(tmp), _extra_files={f"{META_KEY}.json": meta})
    else:
        import onnx

        with warnings.catch_warnings():  # the TorchScript-based exporter: the dynamo one needs onnxscript
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(net, (example,), str(tmp), input_names=["feats"], output_names=["log_posteriors"],
                              dynamic_axes={"feats": {0: "frames"}, "log_posteriors": {0: "frames"}},
                              opset_version=17, dynamo=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, meta
        onnx.save(proto, str(tmp))
    atomic_write_bytes(out, tmp.read_bytes())
    tmp.unlink()
    log.info("%s: %s of %s (%d classes)", out, fmt, model.path, model.config.num_classes)
    return out


@dataclass
class ExportedModel:
    """An exported acoustic model as a callable ``feats (frames, F) float32 -> (frames, C) log-posteriors``."""

    path: Path
    meta: dict[str, Any]
    run: Callable[[np.ndarray], np.ndarray]

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(feats, dtype=np.float32))

    @property
    def config(self) -> ModelConfig:
        """The exported network's architecture (as an :class:`InferenceModel`'s, for the same checks)."""
        return model_config_from_dict(self.meta["model_config"])

    @property
    def fingerprints(self) -> dict[str, Any]:
        return dict(self.meta.get("fingerprints") or {})


def is_exported(path: Path) -> bool:
    """True for an ONNX file or a TorchScript archive written by :func:`export_model`."""
    path = Path(path)
    if path.suffix == ".onnx":
        return True
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith(f"extra/{META_KEY}.json") for n in z.namelist())


def load_exported(path: Path, num_threads: int = 0) -> ExportedModel:
    """Load a file of :func:`export_model` (ONNX through onnxruntime, TorchScript through torch.jit)."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"exported model not found: {path}")
    if path.suffix == ".onnx":
        import onnx
        import onnxruntime as ort

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if META_KEY not in props:
            raise AsrkdError(f"{path} is not an ONNX model exported by asrkd")
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = num_threads
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return ExportedModel(path, json.loads(props[META_KEY]), lambda x: sess.run(None, {"feats": x})[0])
    extra = {f"{META_KEY}.json": ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as e:
        raise AsrkdError(f"{path} is not a TorchScript model: {str(e).splitlines()[0]}") from None
    if not extra[f"{META_KEY}.json"]:
        raise AsrkdError(f"{path} is not a TorchScript model exported by asrkd")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return ExportedModel(path, json.loads(extra[f"{META_KEY}.json"]), run)
