"""``asrkd align``: train the flat-start aligner on a set, or align a set with a trained one,
and write the label store ``data/<set>/labels/<name>/``.

Training writes the experiment directory ``exp/<name>/``: ``config.yaml`` (resolved),
``command``, ``log``, ``metrics.json`` (per-iteration curve, failures), ``final.gmm.npz``
(the model, with the lang and feature fingerprints, its front-end config and the training
set's noise floor), ``.done``.
Aligning another set (dev/test) with ``--model`` reads that model and refuses a model made for
another lang or another feature configuration.

Next to the store: ``failed``, ``word.ctm`` and ``unit.ctm`` (segments of the alignment, times
per :mod:`asrkd.framing`) and ``report.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

from asrkd.align.ctm import to_times, unit_segments, word_segments, write_ctm
from asrkd.align.flatstart import AlignConfig, align_utterances, gmm_score_fn, make_graphs, train_flat_start
from asrkd.align.frontend import FrontendConfig, load_features
from asrkd.align.gmm import DiagGmm
from asrkd.align.labels import labels_dir, write_labels
from asrkd.config import from_dict, save_config, to_dict
from asrkd.data.datadir import read_num_frames, read_table
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, atomic_write_text, is_done, mark_done
from asrkd.lang.inventory import Lang, load_lang
from asrkd.logs import add_log_file

log = logging.getLogger("asrkd.align")

MODEL_FILE = "final.gmm.npz"


@dataclasses.dataclass(frozen=True)
class SkipPolicy:
    """What to do with utterances that cannot be aligned (empty transcript, unit outside the
    inventory, transcript too long for its audio, no features)."""

    skip: bool = False  # False: refuse the set (error naming them); True: leave them out
    max_fraction: float = 0.05  # with skip: still refuse when more than this share of the set is lost


def check_failures(data_dir: Path, failed: dict[str, str], num_utts: int, policy: SkipPolicy) -> None:
    """Log every utterance left out (WARNING, with the count) and raise AsrkdError when the
    policy does not allow it, before anything is written."""
    if not failed:
        return
    for u, reason in sorted(failed.items())[:20]:
        log.warning("%s: cannot align %s: %s", data_dir, u, reason)
    share = len(failed) / max(num_utts, 1)
    log.warning("%s: %d of %d utterance(s) (%.1f%%) cannot be aligned%s", data_dir, len(failed), num_utts,
                100 * share, " (first 20 listed)" if len(failed) > 20 else "")
    sample = "; ".join(f"{u}: {r}" for u, r in sorted(failed.items())[:3])
    if not policy.skip:
        raise AsrkdError(f"{data_dir}: {len(failed)} utterance(s) cannot be aligned ({sample}); fix them "
                         "(asrkd validate-data) or leave them out with --skip-unalignable")
    if share > policy.max_fraction:
        raise AsrkdError(f"{data_dir}: {len(failed)} of {num_utts} utterances ({100 * share:.1f}%) cannot be "
                         f"aligned, more than --max-skip-fraction {policy.max_fraction} ({sample})")


def _write_outputs(
    data_dir: Path, name: str, lang: Lang, texts: dict[str, str], alis: dict, failed: dict[str, str],
    feats_fp: str, source: str, extra_report: dict,
) -> Path:
    """Write the label store of ``alis`` with ``failed`` listed (checked by :func:`check_failures`)."""
    out = labels_dir(data_dir, name)
    expected = read_num_frames(data_dir)
    write_labels(out, ((u, alis[u].classes) for u in sorted(alis)), failed, lang.num_classes,
                 lang.fingerprint, feats_fp, source, expected)
    words_ctm, units_ctm = {}, {}
    for u in sorted(alis):
        segs = unit_segments(alis[u].classes, lang)
        units_ctm[u] = to_times([(lang.units[k], a, b) for k, a, b in segs])
        words = texts[u].split()
        words_ctm[u] = to_times(word_segments(segs, lang, words, lang.transcript_units(texts[u])))
    write_ctm(out / "word.ctm", words_ctm)
    write_ctm(out / "unit.ctm", units_ctm)
    frames = sum(a.classes.size for a in alis.values())
    report = {"utterances": len(alis), "failed": len(failed), "frames": frames,
              "avg_score_per_frame": sum(a.score for a in alis.values()) / max(frames, 1),
              "failed_reasons": dict(sorted(failed.items())[:50]), **extra_report}
    atomic_write_json(out / "report.json", report)
    return out


def train_and_align(data_dir: Path, lang_dir: Path, name: str, exp_dir: Path, cfg: AlignConfig,
                    force: bool = False, policy: SkipPolicy = SkipPolicy()) -> Path:
    """Flat-start training on ``data_dir``; writes ``exp_dir`` and the labels of ``data_dir``."""
    data_dir, exp_dir = Path(data_dir), Path(exp_dir)
    out = labels_dir(data_dir, name)
    if is_done(exp_dir) and is_done(out) and not force:
        log.info("%s and %s are complete; skipping (use --force to redo)", exp_dir, out)
        return out
    exp_dir.mkdir(parents=True, exist_ok=True)
    add_log_file(exp_dir / "log")
    save_config(cfg, exp_dir / "config.yaml")
    atomic_write_text(exp_dir / "command", " ".join(sys.argv) + "\n")
    lang = load_lang(lang_dir)
    texts = read_table(data_dir / "text", allow_empty_value=True)
    utts = sorted(read_num_frames(data_dir))
    feats, feats_fp, floor = load_features(data_dir, utts, cfg.frontend)
    missing = {u: "no-features" for u in utts if u not in feats}
    gmm, alis, failed, curve = train_flat_start(lang, feats, texts, cfg)
    failed.update(missing)
    check_failures(data_dir, failed, len(utts), policy)
    gmm.save(exp_dir / MODEL_FILE, lang_fingerprint=lang.fingerprint, feats_fingerprint=feats_fp,
             frontend=json.dumps(to_dict(cfg.frontend)), acoustic_scale=str(cfg.acoustic_scale),
             noise_floor=json.dumps(None if floor is None else [float(v) for v in floor]))
    atomic_write_json(exp_dir / "metrics.json", {"curve": curve, "failed": len(failed),
                                                 "utterances": len(alis), "gauss": gmm.num_gauss})
    out = _write_outputs(data_dir, name, lang, texts, alis, failed, feats_fp, f"flat-start:{exp_dir}",
                         {"curve": curve})
    mark_done(exp_dir)
    return out


def align_with_model(data_dir: Path, lang_dir: Path, name: str, model_path: Path, force: bool = False,
                     policy: SkipPolicy = SkipPolicy()) -> Path:
    """Align ``data_dir`` with a trained aligner (``exp/<name>/final.gmm.npz``)."""
    data_dir = Path(data_dir)
    out = labels_dir(data_dir, name)
    if is_done(out) and not force:
        log.info("%s is complete; skipping (use --force to redo)", out)
        return out
    lang = load_lang(lang_dir)
    gmm, meta = DiagGmm.load(model_path)
    if meta.get("lang_fingerprint") != lang.fingerprint:
        raise AsrkdError(f"{model_path} was trained with another lang than {lang_dir} (fingerprint differs)")
    if gmm.num_classes != lang.num_classes:
        raise AsrkdError(f"{model_path} has {gmm.num_classes} classes, {lang_dir} has {lang.num_classes}")
    fe = from_dict(FrontendConfig, json.loads(meta["frontend"]))
    floor = json.loads(meta.get("noise_floor", "null"))
    if floor is None:  # trained without a noise floor (or before it existed): none here either
        fe = dataclasses.replace(fe, floor_percentile=0.0)
    else:
        floor = np.asarray(floor, dtype=np.float32)
    texts = read_table(data_dir / "text", allow_empty_value=True)
    utts = sorted(read_num_frames(data_dir))
    feats, feats_fp, _ = load_features(data_dir, utts, fe, floor)
    if feats_fp != meta.get("feats_fingerprint"):
        raise AsrkdError(f"{data_dir}/feats were computed with another feature config than {model_path}'s training set")
    graphs, failed = make_graphs(lang, texts, sorted(feats))
    failed.update({u: "no-features" for u in utts if u not in feats})
    alis, f2 = align_utterances(sorted(graphs), graphs, gmm_score_fn(gmm, feats, float(meta["acoustic_scale"])))
    failed.update(f2)
    check_failures(data_dir, failed, len(utts), policy)
    return _write_outputs(data_dir, name, lang, texts, alis, failed, feats_fp, f"gmm:{model_path}", {})
