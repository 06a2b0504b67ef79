"""``asrkd export MODEL --format torchscript|onnx --out FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export"
HELP = "export a trained model with its input normalisation and context window baked in (frames in, log-posteriors out)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, metavar="MODEL", help="checkpoint (exp/<name>/final.pt)")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript", help="file format")
    p.add_argument("--out", type=Path, required=True, help="output file (e.g. student.ts or student.onnx)")


def run(args: argparse.Namespace) -> int:
    from asrkd.inference.export import export_model
    from asrkd.inference.model import load_model

    export_model(load_model(args.model), args.out, args.format)
    return 0
