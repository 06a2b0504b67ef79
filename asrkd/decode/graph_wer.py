"""WER through a word graph (``asrkd evaluate --graph DIR``): posteriors -> HCLG decoding -> score.

The same procedure for every model (teacher, ensemble, baseline, student): log-likelihoods are
computed once per set (posteriors are the model's, in this process); on dev, every point of the
``wfst.sweep_lm_weights x wfst.sweep_insertion_penalties`` grid decodes the whole set and the
point with the fewest errors (the centre of a tie, :func:`asrkd.decode.sweep.pick_plateau_centre`)
is applied to the evaluation set. Decoding runs over utterances in ``nj`` forked processes (each
utterance on one core; the graph is shared copy-on-write).

Outputs in ``out_dir``: ``wer.json`` (WER/CER, S/D/I, decode RTF over the search alone,
chosen weights, graph fingerprint), ``wer.txt``, ``per_utt``, ``errors``, ``hyp``, ``ref``,
``ctm`` (word times of the 1-best, :mod:`asrkd.align.ctm` format), ``nbest.txt``
(``<utt> <rank> <cost> <words>``, best first, from the lattice search: it has a beam but no
max-active, so where max-active pruned the 1-best search its first entry can be better than the
1-best; ``wer.json`` counts those), ``sweep.json`` and ``decode_config.yaml``.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from asrkd.decode.wfst_decoder import WfstDecoder, WfstHypothesis, word_segments
from asrkd.errors import AsrkdError

log = logging.getLogger("asrkd.decode.graph_wer")

FRAME_SHIFT_S = 0.01
_WORKER: WfstDecoder | None = None  # the decoder a forked worker inherits


def _decode_one(task: tuple[str, np.ndarray, float, float, int]) -> tuple[str, WfstHypothesis, float, list]:
    utt, ll, w, p, nbest = task
    assert _WORKER is not None
    t0 = time.perf_counter()
    hyp = _WORKER.decode(ll, w, p)
    secs = time.perf_counter() - t0  # the 1-best search alone (decode RTF)
    nb = _WORKER.nbest(ll, nbest, w, p) if nbest > 0 else []
    return utt, hyp, secs, nb


def _die_with_parent() -> None:
    """Worker initialiser: on Linux, ask for SIGTERM when the parent dies, so that a killed
    ``asrkd evaluate`` (a timeout, Ctrl-C on the recipe) leaves no decoder running on alone."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux/glibc: the pool's own shutdown still ends the workers


class ParallelDecoder:
    """Decode ``{utt: scaled log-likelihoods}`` with ``nj`` forked workers (1: in this process)."""

    def __init__(self, decoder: WfstDecoder, nj: int = 1):
        global _WORKER
        if nj < 1:
            raise AsrkdError(f"--nj must be >= 1, got {nj}")
        self.decoder = decoder
        _WORKER = decoder
        self.pool = multiprocessing.get_context("fork").Pool(nj, initializer=_die_with_parent) if nj > 1 else None

    def __enter__(self) -> "ParallelDecoder":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def decode(self, logliks: dict[str, np.ndarray], lm_weight: float, penalty: float,
               nbest: int = 0) -> tuple[dict[str, WfstHypothesis], dict[str, float], dict[str, list]]:
        """Returns hypotheses, 1-best search seconds and n-best lists, each ``{utt: ...}``."""
        # Longest first: the pool's last task is then a short one.
        tasks = [(u, ll, lm_weight, penalty, nbest)
                 for u, ll in sorted(logliks.items(), key=lambda kv: -kv[1].shape[0])]
        results = self.pool.imap_unordered(_decode_one, tasks) if self.pool else map(_decode_one, tasks)
        hyps, secs, nbs = {}, {}, {}
        for utt, hyp, s, nb in results:
            hyps[utt], secs[utt], nbs[utt] = hyp, s, nb
        return hyps, secs, nbs


def _logliks(decoder: WfstDecoder, log_posts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {u: decoder.loglik(lp) for u, lp in log_posts.items()}


def evaluate_graph_wer(posterior_fn: Callable[[np.ndarray], np.ndarray], eval_dir: Path, out_dir: Path,
                       decoder: WfstDecoder, decode_cfg: Any, dev_dir: Path | None = None,
                       nj: int = 1) -> dict[str, Any]:
    """Decode and score ``eval_dir`` through the graph (module docstring); returns ``wer.json``.
    ``decode_cfg``: the :class:`asrkd.decode.decoder.DecodeConfig` (its ``lm_weight`` and
    ``insertion_penalty`` apply without a dev set; the chosen ones are saved in it)."""
    from asrkd.align.ctm import to_times, write_ctm
    from asrkd.config import save_config
    from asrkd.decode.sweep import sweep_grid
    from asrkd.decode.wer import _log_posteriors, _refs
    from asrkd.evaluation.scoring import score_texts, write_scoring
    from asrkd.fileio import atomic_write_json, atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wcfg = decoder.cfg
    lm_weight, penalty = decode_cfg.lm_weight, decode_cfg.insertion_penalty
    sweep_info: dict[str, Any] | None = None
    with ParallelDecoder(decoder, nj) as pd:
        if dev_dir is not None:
            dev_refs = _refs(dev_dir)
            dev_ll = _logliks(decoder, _log_posteriors(posterior_fn, dev_dir, desc="dev posteriors"))

            def decode_fn(w: float, p: float) -> tuple[dict[str, WfstHypothesis], float]:
                hyps, secs, _ = pd.decode(dev_ll, w, p)
                return hyps, float(sum(secs.values()))

            best = sweep_grid(decode_fn, dev_refs, wcfg.sweep_lm_weights, wcfg.sweep_insertion_penalties)
            lm_weight, penalty = best.lm_weight, best.insertion_penalty
            sweep_info = {"dev": str(dev_dir), "lm_weight": lm_weight, "insertion_penalty": penalty,
                          "dev_wer": best.wer, "table": best.table}
            atomic_write_json(out_dir / "sweep.json", sweep_info)
            log.info("dev sweep (graph): lm_weight %.2f, insertion_penalty %.2f (dev WER %.2f%%)",
                     lm_weight, penalty, best.wer)
        save_config(replace(decode_cfg, lm_weight=lm_weight, insertion_penalty=penalty), out_dir / "decode_config.yaml")
        refs = _refs(eval_dir)
        ll = _logliks(decoder, _log_posteriors(posterior_fn, eval_dir))
        t0 = time.perf_counter()
        hyps, secs, nbests = pd.decode(ll, lm_weight, penalty, nbest=wcfg.nbest)
        wall = time.perf_counter() - t0
    missing = sorted(set(refs) - set(ll))
    if missing:
        log.warning("%d utterance(s) of %s have no features; scored as empty hypotheses", len(missing), eval_dir)
    not_final = sum(not h.reached_final for h in hyps.values())
    # The lattice search has no max-active: it can find a better path than the 1-best search.
    nbest_better = sum(1 for u, nb in nbests.items() if nb and nb[0][1] < hyps[u].cost - 1e-3 * max(1.0, abs(hyps[u].cost)))
    if nbest_better:
        log.warning("%d utterance(s): the n-best search found a better path than the 1-best search "
                    "(max_active %d prunes it; raise it)", nbest_better, wcfg.max_active)
    if not_final:
        log.warning("%d utterance(s) ended outside a final state (beam too narrow?)", not_final)
    res = score_texts(refs, {u: h.text for u, h in hyps.items() if u in refs})
    frames = sum(x.shape[0] for x in ll.values())
    decode_s = float(sum(secs.values()))
    ctm = {}
    for u, h in sorted(hyps.items()):
        ctm[u] = to_times(word_segments(h, decoder.graph))
    write_ctm(out_dir / "ctm", ctm)
    atomic_write_text(out_dir / "nbest.txt", "".join(
        f"{u} {k} {cost:.4f} {' '.join(words)}".rstrip() + "\n"
        for u in sorted(nbests) for k, (words, cost) in enumerate(nbests[u], 1)))
    extra = {
        "decoder": "graph", "graph": str(decoder.graph.directory), "graph_fingerprint": decoder.graph.fingerprint,
        "engine": wcfg.engine, "decode_rtf": decode_s / max(frames * FRAME_SHIFT_S, 1e-9),
        "decode_seconds": decode_s, "decode_wall_seconds_incl_nbest": wall, "nj": nj,
        "audio_seconds": frames * FRAME_SHIFT_S, "lm_weight": lm_weight, "insertion_penalty": penalty,
        "acoustic_scale": wcfg.acoustic_scale, "beam": wcfg.beam, "max_active": wcfg.max_active,
        "lattice_beam": wcfg.lattice_beam, "nbest": wcfg.nbest, "not_final": int(not_final),
        "nbest_better_than_1best": int(nbest_better),
        "sweep": sweep_info and {k: v for k, v in sweep_info.items() if k != "table"},
    }
    write_scoring(out_dir, res, extra)
    log.info("%s (graph %s): WER %.2f%% [%d / %d, %d ins, %d del, %d sub], decode RTF %.4f (nj %d)",
             eval_dir, decoder.graph.directory, res.wer, res.words.errors, res.words.ref, res.words.ins,
             res.words.dele, res.words.sub, extra["decode_rtf"], nj)
    return {**res.summary(), **extra}


def make_graph_decoder(graph_dir: Path, prior_labels: Path | None, wcfg: Any) -> WfstDecoder:
    """A :class:`WfstDecoder` for ``graph_dir`` with priors from the label store ``prior_labels``
    (None: no prior division); classes without a frame there are never decoded."""
    from asrkd.decode.hclg import load_graph
    from asrkd.decode.priors import class_counts, log_priors

    graph = load_graph(graph_dir)
    prior = unseen = None
    if prior_labels is not None:
        counts = class_counts(Path(prior_labels), graph.num_pdfs)
        prior, unseen = log_priors(counts), counts == 0
    return WfstDecoder(graph, wcfg, prior, unseen)
