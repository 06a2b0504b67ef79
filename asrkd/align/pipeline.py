"""``asrkd align``: train the aligner on a set (monophone flat start, then optionally the tied-state
triphone system), or align a set with a trained one, and write the label store
``data/<set>/labels/<name>/``.

Training writes the experiment directory ``exp/<name>/``: ``config.yaml`` (resolved),
``command``, ``log``, ``metrics.json`` (per-iteration curves, each system's log-likelihood per
frame on its final alignment, failures), ``final.gmm.npz`` (the final model, with its class
inventory's and the features' fingerprints, its front-end config and the training set's noise
floor), ``.done``. With triphones (``triphone.num_leaves > 0``) the monophone model is kept as
``mono.gmm.npz``, the tree and its pdfs go into the tied-state lang (``data/lang_tri`` by default,
:mod:`asrkd.lang.tied`) and the labels are its pdfs.
Aligning another set (dev/test) with ``--model`` reads that model and refuses a model made for
another class inventory or another feature configuration.

Next to the store: ``failed``, ``word.ctm`` and ``unit.ctm`` (segments of the alignment's path,
times per :mod:`asrkd.framing`) and ``report.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

from asrkd.align.aligner import Alignment
from asrkd.align.ctm import path_segments, to_times, word_segments, write_ctm
from asrkd.align.config import AlignConfig
from asrkd.align.flatstart import ScoreFn, align_utterances, gmm_score_fn, make_graphs, train_flat_start
from asrkd.align.frontend import FrontendConfig, load_features
from asrkd.align.gmm import DiagGmm
from asrkd.align.graph import Graph
from asrkd.align.labels import labels_dir, write_labels
from asrkd.align.treebuild import TreeConfig, build_tree, leaf_gmm
from asrkd.align.treestats import accumulate_tree_stats
from asrkd.align.triphone import alignment_loglik, train_triphone
from asrkd.config import from_dict, load_config, save_config, to_dict
from asrkd.data.datadir import read_num_frames, read_table
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, atomic_write_text, is_done, mark_done, remove_tree
from asrkd.framestore import FrameStore
from asrkd.lang.dtree import has_tree
from asrkd.lang.inventory import Lang
from asrkd.lang.tied import Inventory, load_inventory, write_tied_lang
from asrkd.logs import add_log_file

log = logging.getLogger("asrkd.align")

MODEL_FILE = "final.gmm.npz"
MONO_MODEL_FILE = "mono.gmm.npz"


def default_tied_dir(lang_dir: Path) -> Path:
    """Where the tied-state lang goes by default: ``data/lang`` -> ``data/lang_tri``."""
    lang_dir = Path(lang_dir)
    return lang_dir.parent / f"{lang_dir.name}_tri"


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


def write_outputs(
    data_dir: Path, name: str, inv: Inventory, texts: dict[str, str], graphs: dict[str, Graph],
    alis: dict[str, Alignment], failed: dict[str, str], feats_fp: str, source: str, extra_report: dict,
    policy: SkipPolicy = SkipPolicy(),
) -> Path:
    """The label store of ``alis`` (classes of ``inv``), its CTMs (cut along each alignment's
    path through ``graphs``) and report.json; ``failed`` checked by :func:`check_failures` first."""
    lang = inv.lang
    out = labels_dir(data_dir, name)
    expected = read_num_frames(data_dir)
    check_failures(data_dir, failed, len(expected), policy)
    write_labels(out, ((u, alis[u].classes) for u in sorted(alis)), failed, inv.num_classes,
                 inv.fingerprint, feats_fp, source, expected)
    words_ctm, units_ctm = {}, {}
    for u in sorted(alis):
        segs = path_segments(graphs[u], alis[u].nodes, lang.silence_unit)
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


def _model_meta(inv: Inventory, feats_fp: str, cfg: AlignConfig, floor: np.ndarray | None) -> dict[str, str]:
    return {"lang_fingerprint": inv.fingerprint, "feats_fingerprint": feats_fp,
            "frontend": json.dumps(to_dict(cfg.frontend)), "acoustic_scale": str(cfg.acoustic_scale),
            "noise_floor": json.dumps(None if floor is None else [float(v) for v in floor])}


def grow_tree(lang: Lang, feats: dict[str, np.ndarray], alis: dict[str, Alignment], cfg: AlignConfig,
              tied_dir: Path) -> tuple[Inventory, DiagGmm, dict]:
    """Tree statistics of the monophone alignment ``alis``, the decision tree (``triphone.num_leaves``
    pdfs at most), written as the tied-state lang ``tied_dir`` -> (its inventory, one Gaussian per
    pdf, a report)."""
    if cfg.triphone.tree.num_leaves != TreeConfig().num_leaves:
        raise AsrkdError("set the number of leaves as triphone.num_leaves (triphone.tree.num_leaves is not used)")
    tree_cfg = dataclasses.replace(cfg.triphone.tree, num_leaves=cfg.triphone.num_leaves)
    utts = sorted(alis)
    stats = accumulate_tree_stats(lang, ((alis[u].classes, feats[u]) for u in utts), feats[utts[0]].shape[1])
    tree, report = build_tree(stats, lang, tree_cfg)
    inv = write_tied_lang(tied_dir, lang, tree)
    frames = max(report.frames, 1.0)
    summary = {"num_pdfs": report.num_pdfs, "split_leaves": report.split_leaves, "stop": report.stop,
               "questions": report.questions, "tree_loglik_roots": report.loglik_roots / frames,
               "tree_loglik_final": report.loglik_final / frames}
    return inv, leaf_gmm(inv.tree, stats, tree_cfg.var_floor), summary


def train_and_align(data_dir: Path, lang_dir: Path, name: str, exp_dir: Path, cfg: AlignConfig,
                    force: bool = False, tied_dir: Path | None = None, policy: SkipPolicy = SkipPolicy()) -> Path:
    """Train the aligner on ``data_dir``; writes ``exp_dir``, the labels of ``data_dir`` and
    (with triphones) the tied-state lang ``tied_dir`` (default :func:`default_tied_dir`)."""
    data_dir, exp_dir = Path(data_dir), Path(exp_dir)
    tri = cfg.triphone.num_leaves > 0
    tied_dir = Path(tied_dir) if tied_dir is not None else default_tied_dir(lang_dir)
    out = labels_dir(data_dir, name)
    if is_done(exp_dir) and is_done(out) and (not tri or is_done(tied_dir)) and not force:
        saved = exp_dir / "config.yaml"
        if saved.is_file() and load_config(AlignConfig, saved) != cfg:
            raise AsrkdError(f"{exp_dir} was trained with another config ({saved}); use --force to retrain")
        made_on = FrameStore(out).attrs.get("lang_fingerprint")
        if made_on != load_inventory(tied_dir if tri else lang_dir).fingerprint:
            raise AsrkdError(f"{out} holds labels of another class inventory than {tied_dir if tri else lang_dir}; "
                             "use --force to retrain")
        log.info("%s and %s are complete; skipping (use --force to redo)", exp_dir, out)
        return out
    exp_dir.mkdir(parents=True, exist_ok=True)
    add_log_file(exp_dir / "log")
    save_config(cfg, exp_dir / "config.yaml")
    atomic_write_text(exp_dir / "command", " ".join(sys.argv) + "\n")
    inv = load_inventory(lang_dir)
    if inv.tied:
        raise AsrkdError(f"{lang_dir} is a tied-state lang: train the aligner on the lang of make-units")
    if not tri and has_tree(tied_dir):  # a tied-state lang of an earlier run: no longer what the labels are
        log.info("removing %s (tied states of an earlier run; triphone.num_leaves is 0)", tied_dir)
        remove_tree(tied_dir)
    lang = inv.lang
    texts = read_table(data_dir / "text", allow_empty_value=True)
    utts = sorted(read_num_frames(data_dir))
    feats, feats_fp, floor = load_features(data_dir, utts, cfg.frontend)
    missing = {u: "no-features" for u in utts if u not in feats}
    gmm, alis, failed, curve = train_flat_start(lang, feats, texts, cfg)
    mono_ll = alignment_loglik(gmm, feats, {u: a.classes for u, a in alis.items()})
    log.info("monophone system: %d Gaussians, avg loglik/frame %.3f on its final alignment", gmm.num_gauss, mono_ll)
    gmm.save(exp_dir / (MONO_MODEL_FILE if tri else MODEL_FILE), **_model_meta(inv, feats_fp, cfg, floor))
    graphs, _ = make_graphs(lang, texts, sorted(alis))
    metrics: dict = {"curve": curve, "gauss": gmm.num_gauss, "avg_loglik": mono_ll}
    if tri:
        inv, init, tree_report = grow_tree(lang, feats, alis, cfg, tied_dir)
        tri_gmm, graphs, alis, failed_tri, tri_curve = train_triphone(
            lang, inv.tree, init, feats, texts, graphs, alis, cfg.triphone, cfg.var_floor, cfg.acoustic_scale)
        failed.update(failed_tri)
        tri_ll = alignment_loglik(tri_gmm, feats, {u: a.classes for u, a in alis.items()})
        log.info("triphone system: %d pdfs, %d Gaussians, avg loglik/frame %.3f on its final alignment "
                 "(monophone %.3f)", inv.num_classes, tri_gmm.num_gauss, tri_ll, mono_ll)
        tri_gmm.save(exp_dir / MODEL_FILE, **_model_meta(inv, feats_fp, cfg, floor))
        metrics["triphone"] = {"curve": tri_curve, "num_pdfs": inv.num_classes, "gauss": tri_gmm.num_gauss,
                               "avg_loglik": tri_ll, "tied_lang": str(tied_dir), "tree": tree_report}
    failed.update(missing)
    metrics.update({"failed": len(failed), "utterances": len(alis)})
    atomic_write_json(exp_dir / "metrics.json", metrics)
    out = write_outputs(data_dir, name, inv, texts, graphs, alis, failed, feats_fp,
                        f"{'triphone' if tri else 'flat-start'}:{exp_dir}", {"curve": curve}, policy=policy)
    mark_done(exp_dir)
    return out


def align_with_model(data_dir: Path, lang_dir: Path, name: str, model_path: Path, force: bool = False,
                     policy: SkipPolicy = SkipPolicy()) -> Path:
    """Align ``data_dir`` with a trained aligner (``exp/<name>/final.gmm.npz``) on the class
    inventory ``lang_dir`` it was trained for (``data/lang`` or ``data/lang_tri``)."""
    data_dir = Path(data_dir)
    if complete(data_dir, name, force):
        return labels_dir(data_dir, name)
    inv = load_inventory(lang_dir)
    gmm, meta = DiagGmm.load(model_path)
    if meta.get("lang_fingerprint") != inv.fingerprint:
        raise AsrkdError(f"{model_path} was trained with another class inventory than {lang_dir} (fingerprint "
                         "differs; a triphone model aligns on data/lang_tri)")
    if gmm.num_classes != inv.num_classes:
        raise AsrkdError(f"{model_path} has {gmm.num_classes} classes, {lang_dir} has {inv.num_classes}")
    fe = from_dict(FrontendConfig, json.loads(meta["frontend"]))
    floor = json.loads(meta.get("noise_floor", "null"))
    if floor is None:  # trained without a noise floor (or before it existed): none here either
        fe = dataclasses.replace(fe, floor_percentile=0.0)
    else:
        floor = np.asarray(floor, dtype=np.float32)
    utts = sorted(read_num_frames(data_dir))
    feats, feats_fp, _ = load_features(data_dir, utts, fe, floor)
    if feats_fp != meta.get("feats_fingerprint"):
        raise AsrkdError(f"{data_dir}/feats were computed with another feature config than {model_path}'s training set")
    score_fn = gmm_score_fn(gmm, feats, float(meta["acoustic_scale"]))
    return align_set(data_dir, name, inv, set(feats), score_fn, feats_fp, f"gmm:{model_path}", {}, policy=policy)


def complete(data_dir: Path, name: str, force: bool) -> bool:
    """True (logged) when the label set ``name`` of ``data_dir`` is complete and not ``force``d."""
    out = labels_dir(data_dir, name)
    if is_done(out) and not force:
        log.info("%s is complete; skipping (use --force to redo)", out)
        return True
    return False


def align_set(data_dir: Path, name: str, inv: Inventory, have_feats: set[str], score_fn: ScoreFn, feats_fp: str,
              source: str, extra_report: dict, desc: str = "align", policy: SkipPolicy = SkipPolicy()) -> Path:
    """Align every utterance of ``data_dir`` (those in ``have_feats``; the others fail as
    no-features) with any model's ``score_fn`` on ``inv``'s graphs, and write the outputs."""
    texts = read_table(data_dir / "text", allow_empty_value=True)
    utts = sorted(read_num_frames(data_dir))
    graphs, failed = make_graphs(inv.lang, texts, [u for u in utts if u in have_feats], inv.tree)
    failed.update({u: "no-features" for u in utts if u not in have_feats})
    alis, f2 = align_utterances(sorted(graphs), graphs, score_fn, desc=desc)
    failed.update(f2)
    return write_outputs(data_dir, name, inv, texts, graphs, alis, failed, feats_fp, source, extra_report, policy)
