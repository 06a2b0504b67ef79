"""``asrkd transcribe``: audio files -> text with a trained model (or ensemble) and data/lang."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkd.commands._common import add_config_args, add_device_arg, add_precision_arg

NAME = "transcribe"
HELP = "turn audio files into text with trained model(s): through a word graph (--graph), or the lang and a unit LM"

log = logging.getLogger("asrkd.commands.transcribe")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="+", help="audio files (any rate; resampled like the training data)")
    p.add_argument("--model", action="append", required=True, type=Path,
                   help="checkpoint (exp/<name>/final.pt) or a model of `asrkd export`; repeat for an ensemble")
    from asrkd.inference.spec import COMBINE_RULES

    p.add_argument("--combine", choices=COMBINE_RULES, default="mean", help="ensemble combination")
    p.add_argument("--graph", type=Path, default=None,
                   help="word decoding graph (asrkd mkgraph) on the model's tied states: decode words through it; "
                        "LM weight / insertion penalty from the config (e.g. eval_dev/decode_config.yaml)")
    p.add_argument("--lang", type=Path, default=None,
                   help="without --graph: lang dir the model was trained with (data/lang), for the unit-LM decoder")
    p.add_argument("--train-data", required=True, type=Path,
                   help="training data dir: feature config (feats/); without --graph also the unit LM text and word list")
    p.add_argument("--prior-labels", type=Path, default=None, help="training label store for the priors")
    add_precision_arg(p, "inference precision (auto: bf16 on CPUs with native bf16, else fp32; on a GPU bf16 "
                         "where supported, else fp16)")
    add_device_arg(p)
    add_config_args(p)  # DecodeConfig values (--config decode.yaml, --set beam=16)


def run(args: argparse.Namespace) -> int:
    from asrkd.commands._common import config_from_args
    from asrkd.decode.decoder import DecodeConfig
    from asrkd.decode.transcribe import load_feature_config, transcribe_files
    from asrkd.decode.wer import make_decoder
    from asrkd.inference.device import resolve_device, resolve_precision
    from asrkd.inference.export import is_exported, load_exported
    from asrkd.inference.model import load_model

    from asrkd.errors import AsrkdError

    cfg = config_from_args(DecodeConfig, args)
    device = resolve_device(args.device)
    models = [load_exported(p) if is_exported(p) else load_model(p, device) for p in args.model]
    feat_cfg = load_feature_config(args.train_data, models)
    if args.graph is not None:
        from asrkd.decode.graph_wer import make_graph_decoder
        from asrkd.decode.transcribe import GraphTranscriber

        decoder = GraphTranscriber(make_graph_decoder(args.graph, args.prior_labels, cfg.wfst),
                                   cfg.lm_weight, cfg.insertion_penalty)
    elif args.lang is not None:
        decoder = make_decoder(args.lang, args.train_data, args.prior_labels, cfg)
    else:
        raise AsrkdError("give --graph (word graph) or --lang (unit-LM decoder)")
    for path, text in transcribe_files(args.audio, models, decoder, feat_cfg, args.combine,
                                       resolve_precision(args.precision, device)):
        sys.stdout.write(f"{path} {text}\n")
    return 0
