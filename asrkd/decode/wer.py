"""WER of a model or ensemble on a data set: posteriors -> decode -> score (``asrkd evaluate``).

Steps: the decoder is built from ``data/lang`` and the training transcripts (unit LM, word list)
with priors from the training labels; if a dev set is given, LM weight and insertion penalty
are chosen there by a sweep (:mod:`asrkd.decode.sweep`) and then applied to the evaluation
set. Outputs in ``out_dir``: ``wer.json`` (WER/CER, S/D/I, decode RTF, greedy WER, chosen
weights), ``wer.txt``, ``per_utt``, ``errors``, ``hyp``, ``ref``, ``greedy/`` (same files for
the greedy decode), ``sweep.json`` (the dev grid) and ``decode_config.yaml``.

Every utterance of the evaluation set with features is decoded, failed alignments included:
WER does not need labels. References come from ``data/<set>/text``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from asrkd.config import save_config
from asrkd.data.datadir import feats_dir, read_table
from asrkd.decode.build import build_decoder
from asrkd.decode.decoder import DecodeConfig, Decoder, log_posteriors
from asrkd.decode.priors import class_counts, log_priors, unseen_units
from asrkd.decode.status import WER_DONE, decoder_tag, wer_complete
from asrkd.decode.sweep import sweep
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, clear_done, mark_done
from asrkd.framestore import FrameStore
from asrkd.lang.tied import load_inventory
from asrkd.logs import progress
from asrkd.evaluation.scoring import score_texts, write_scoring

log = logging.getLogger("asrkd.decode.wer")

# (frames, F) raw features of one utterance -> (frames, C) posteriors (probabilities, not logs).
PosteriorFn = Callable[[np.ndarray], np.ndarray]

FRAME_SHIFT_S = 0.01


def _log_posteriors(posterior_fn: PosteriorFn, data_dir: Path, utts: Sequence[str] | None = None,
                    desc: str = "posteriors",
                    to_log: Callable[[np.ndarray], np.ndarray] = log_posteriors) -> dict[str, np.ndarray]:
    """``{utt: (frames, C) log-posteriors}`` of ``data_dir``; ``to_log`` takes the posteriors to the
    decoder's classes (a unit-LM decoder on a tied-state model folds pdfs into unit states).

    Under torchrun each rank computes every ``world``-th utterance and rank 0 gathers them all
    (the decoding itself runs on rank 0, in ``--nj`` processes); the other ranks get ``{}``."""
    from asrkd.distributed import gather_to_main, process_rank_world

    rank, world = process_rank_world()
    store = FrameStore(feats_dir(data_dir))
    keys = store.keys() if utts is None else [u for u in utts if u in store]
    if world == 1:
        return {u: to_log(posterior_fn(np.asarray(store[u]))) for u in progress(keys, total=len(keys), desc=desc)}
    mine = keys[rank::world]
    posts = {u: posterior_fn(np.asarray(store[u])) for u in progress(mine, total=len(mine), desc=desc)}
    merged: dict[str, np.ndarray] = {}
    for part in gather_to_main(posts):
        merged.update(part)
    return {u: to_log(merged[u]) for u in keys if u in merged}


def _refs(data_dir: Path) -> dict[str, str]:
    path = Path(data_dir) / "text"
    if not path.is_file():
        raise AsrkdError(f"{data_dir} has no text file: cannot score WER")
    return read_table(path, allow_empty_value=True)


def make_decoder(lang_dir: Path, train_dir: Path, prior_labels: Path | None, cfg: DecodeConfig,
                 lm_cache: Path | None = None) -> Decoder:
    """Decoder for ``lang_dir`` with the LM/word list of ``train_dir/text`` and priors from the
    label store ``prior_labels`` (None: no prior division); units with a class that has no frame
    in those labels are left out of the graph (:func:`asrkd.decode.priors.unseen_units`). On a
    tied-state lang the model's pdfs are summed per unit state (:meth:`Decoder.log_posteriors`)
    for the unit-level search."""
    inv = load_inventory(lang_dir)
    lang = inv.lang
    class_map = inv.class_to_monophone() if inv.tied else None
    if inv.tied and class_map is None:
        raise AsrkdError(f"{lang_dir}: pdfs shared between unit states cannot be decoded with a unit LM")
    prior = None
    excluded: list[int] = []
    if prior_labels is not None:
        counts = class_counts(Path(prior_labels), inv.num_classes)
        if class_map is not None:  # a unit state's frames: those of its pdfs
            counts = np.bincount(class_map, weights=counts, minlength=lang.num_classes).astype(np.int64)
        prior = log_priors(counts)
        excluded = unseen_units(lang, counts)
    texts = list(_refs(train_dir).values())
    decoder = build_decoder(lang, texts, cfg, log_prior=prior, lm_cache=lm_cache, excluded_units=excluded)
    decoder.class_map = class_map
    return decoder


def evaluate_wer(posterior_fn: PosteriorFn, eval_dir: Path, out_dir: Path, decoder: Decoder,
                 dev_dir: Path | None = None) -> dict[str, Any]:
    """Decode and score ``eval_dir`` (see module docstring); returns the ``wer.json`` content."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = decoder.cfg
    lm_weight, penalty = cfg.lm_weight, cfg.insertion_penalty
    sweep_info: dict[str, Any] | None = None
    if dev_dir is not None:
        dev_refs = _refs(dev_dir)
        dev_lp = _log_posteriors(posterior_fn, dev_dir, desc="dev posteriors", to_log=decoder.log_posteriors)
        dev_ll = {u: decoder.loglik(lp) for u, lp in dev_lp.items()}
        best = sweep(decoder, dev_ll, dev_refs, cfg.sweep_lm_weights, cfg.sweep_insertion_penalties)
        lm_weight, penalty = best.lm_weight, best.insertion_penalty
        sweep_info = {"dev": str(dev_dir), "lm_weight": lm_weight, "insertion_penalty": penalty,
                      "dev_wer": best.wer, "table": best.table}
        atomic_write_json(out_dir / "sweep.json", sweep_info)
        log.info("dev sweep: lm_weight %.2f, insertion_penalty %.2f (dev WER %.2f%%)", lm_weight, penalty, best.wer)
    save_config(replace(cfg, lm_weight=lm_weight, insertion_penalty=penalty), out_dir / "decode_config.yaml")

    refs = _refs(eval_dir)
    log_posts = _log_posteriors(posterior_fn, eval_dir, to_log=decoder.log_posteriors)
    missing = sorted(set(refs) - set(log_posts))
    if missing:
        log.warning("%d utterance(s) of %s have no features; scored as empty hypotheses", len(missing), eval_dir)
    hyps, greedy = {}, {}
    decode_s = 0.0
    frames = 0
    not_final = 0
    for u, lp in progress(log_posts.items(), total=len(log_posts), desc="decode"):
        ll = decoder.loglik(lp)
        t0 = time.perf_counter()
        h = decoder.decode_loglik(ll, lm_weight=lm_weight, insertion_penalty=penalty)
        decode_s += time.perf_counter() - t0
        frames += lp.shape[0]
        not_final += h.result is not None and not h.result.reached_final
        hyps[u] = h.text
        greedy[u] = decoder.greedy(lp).text
    if not_final:
        log.warning("%d utterance(s) ended outside a final state (beam too narrow?)", not_final)
    res = score_texts(refs, {u: h for u, h in hyps.items() if u in refs})
    gres = score_texts(refs, {u: h for u, h in greedy.items() if u in refs})
    rtf = decode_s / max(frames * FRAME_SHIFT_S, 1e-9)
    extra = {
        "decode_rtf": rtf, "decode_seconds": decode_s, "audio_seconds": frames * FRAME_SHIFT_S,
        "lm_weight": lm_weight, "insertion_penalty": penalty, "beam": cfg.beam,
        "max_active": cfg.max_active, "graph": decoder.kind, "greedy_wer": gres.wer,
        "not_final": int(not_final), "sweep": sweep_info and {k: v for k, v in sweep_info.items() if k != "table"},
    }
    write_scoring(out_dir, res, extra)
    write_scoring(out_dir / "greedy", gres)
    log.info("%s: WER %.2f%% [%d / %d, %d ins, %d del, %d sub], CER %.2f%%, greedy WER %.2f%%, decode RTF %.4f",
             eval_dir, res.wer, res.words.errors, res.words.ref, res.words.ins, res.words.dele,
             res.words.sub, res.cer, gres.wer, rtf)
    return {**res.summary(), **extra}


@dataclass(frozen=True)
class WerSetup:
    """What decoding an evaluation set needs besides the posteriors: a word graph, or the lang
    for the unit-LM decoder."""

    lang: Path | None            # data/lang for the unit-LM decoder (None with a graph)
    train_data: Path | None      # training data dir: its text trains the unit LM and gives the word list
    prior_labels: Path | None    # training label store for the class priors (None: no prior division)
    dev: Path | None             # dev data dir: LM weight / insertion penalty swept there (None: as configured)
    decode: DecodeConfig         # decoder settings (the sweep grid included)
    graph: Path | None = None    # word decoding graph dir (asrkd mkgraph): decode words through HCLG
    nj: int = 1                  # graph decoding: utterances decoded in parallel (processes)


def write_wer(posterior_fn: PosteriorFn, eval_dir: Path, out_dir: Path, setup: WerSetup,
              force: bool = False) -> dict[str, Any] | None:
    """The WER step of ``asrkd evaluate``: decode and score ``eval_dir`` into ``out_dir``
    (through the word graph, :mod:`asrkd.decode.graph_wer`, or the unit-LM decoder,
    :func:`evaluate_wer`), then ``out_dir/.wer.done`` naming the decoder. A complete step by the
    same decoder is skipped (None is returned, ``posterior_fn`` is never called) unless ``force``;
    one by another decoder is refused."""
    out_dir = Path(out_dir)
    if setup.graph is None and (setup.lang is None or setup.train_data is None):
        raise AsrkdError("WER needs --graph, or --lang with --train-data (the unit LM and word list)")
    tag = decoder_tag(setup.graph)
    if wer_complete(out_dir, tag, force):
        return None
    from asrkd.distributed import process_rank_world

    if process_rank_world()[0] != 0:
        # Under torchrun the ranks share the posteriors (dev first, then the evaluation set, as
        # both decoders ask for them); rank 0 decodes and writes.
        if setup.dev is not None:
            _log_posteriors(posterior_fn, setup.dev, desc="dev posteriors")
        _log_posteriors(posterior_fn, eval_dir)
        return None
    clear_done(out_dir, WER_DONE)
    if setup.graph is not None:
        from asrkd.decode.graph_wer import evaluate_graph_wer, make_graph_decoder

        graph_decoder = make_graph_decoder(setup.graph, setup.prior_labels, setup.decode.wfst)
        result = evaluate_graph_wer(posterior_fn, eval_dir, out_dir, graph_decoder, setup.decode, setup.dev, setup.nj)
    else:
        decoder = make_decoder(setup.lang, setup.train_data, setup.prior_labels, setup.decode,
                               lm_cache=out_dir / "lm" / "unit_lm.npz")
        result = evaluate_wer(posterior_fn, eval_dir, out_dir, decoder, setup.dev)
    mark_done(out_dir, {"wer": result["wer"]["rate"], "decoder": tag}, name=WER_DONE)
    return result
