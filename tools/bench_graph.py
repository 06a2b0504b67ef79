"""``decode`` benchmark: decoding through the word graph HCLG, and building it.

``decode_rtf`` = 1-best search time / audio time on one core (this process, nothing in parallel),
acoustic model excluded, at the default (tuned) :class:`asrkd.decode.wfst_decoder.WfstConfig`
beam and max-active, LM weight 1, no insertion penalty. Data: LJ Speech as ``bench_decode``
splits it (first 90% of the subset's transcripts train, last 10% test): a grapheme lang of
3-state units (the LJ recipe's) from the training transcripts, the word LM given by
``--lm-arpa``, the graph built into a temporary directory (``graph_build_s``: G + L + LG + CLG +
HCLG, one core, wall; ``graph_build_cpu_s`` its CPU time; ``hclg_states``, ``hclg_arcs``), and the test transcripts turned into synthetic
DNN-like posteriors (``bench_decode.utterance_posteriors``: ~70% frame accuracy, errors in runs).
``decode_wer`` is the WER of those decodes; ``decode_rtf_kaldi`` / ``decode_rtf_numba`` the two
search engines on the same graph (``decode_rtf`` is the default engine's). Median of ``--runs``
(at most 3) timed runs after a warm-up.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import BenchSkipped, say
from bench_decode import lj_split, utterance_posteriors


def run(args: argparse.Namespace) -> dict[str, float]:
    train, test = lj_split(args.data)
    arpa = getattr(args, "lm_arpa", None) or os.environ.get("ASRKD_BENCH_ARPA")
    if not arpa or not Path(arpa).is_file():
        raise BenchSkipped("needs the LJ Speech word LM: --lm-arpa FILE (asrkd train-lm) or ASRKD_BENCH_ARPA")
    from asrkd.decode.decoder import hmms_from_lang
    from asrkd.decode.hclg import build_hclg
    from asrkd.decode.wfst_decoder import WfstConfig, WfstDecoder
    from asrkd.evaluation.scoring import score_texts
    from asrkd.lang.inventory import LangConfig, make_lang

    logging.getLogger("asrkd").setLevel(logging.WARNING)
    cfg = WfstConfig()
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="asrkd-bench-graph-") as tmp:
        lang = make_lang(train, Path(tmp) / "lang", LangConfig(unit_type="grapheme", states_per_unit=3))
        t0, c0 = time.perf_counter(), time.process_time()
        graph = build_hclg(lang, Path(arpa), Path(tmp) / "graph")
        out["graph_build_s"] = round(time.perf_counter() - t0, 2)
        out["graph_build_cpu_s"] = round(time.process_time() - c0, 2)  # wall time inflates on a shared machine
        size = graph.info["sizes"]["HCLG"]
        out["hclg_states"], out["hclg_arcs"] = float(size["states"]), float(size["arcs"])
        say(f"[bench] graph: {size['states']} states, {size['arcs']} arcs, built in {out['graph_build_s']} s "
            f"({graph.info['lm_words']} LM words)")
        hmms = hmms_from_lang(lang)
        refs = {f"u{i:03d}": t for i, t in enumerate(test)}
        posts = {u: utterance_posteriors(lang, hmms, t, rng) for u, t in refs.items()}
        frames = sum(p.shape[0] for p in posts.values())
        audio_s = frames * 0.01
        for engine in ("kaldi", "numba"):
            dec = WfstDecoder(graph, WfstConfig(engine=engine))
            logliks = {u: dec.loglik(p) for u, p in posts.items()}
            dec.decode(next(iter(logliks.values())))  # warm-up: numba compile or cache load
            walls, hyps = [], {}
            for i in range(max(1, min(args.runs, 3))):
                t0 = time.perf_counter()
                res = {u: dec.decode(ll) for u, ll in logliks.items()}
                walls.append(time.perf_counter() - t0)
                hyps = {u: h.text for u, h in res.items()}
                say(f"[bench] graph decode ({engine}) run {i + 1}: {walls[-1]:.2f} s for {audio_s:.0f} s "
                    f"of audio (RTF {walls[-1] / audio_s:.4f})")
            out[f"decode_rtf_{engine}"] = round(statistics.median(walls) / audio_s, 5)
            out[f"decode_wer_{engine}"] = round(score_texts(refs, hyps).wer, 2)
    out["decode_rtf"] = out[f"decode_rtf_{cfg.engine}"]
    out["decode_wer"] = out[f"decode_wer_{cfg.engine}"]
    out["decode_beam"] = cfg.beam
    out["decode_max_active"] = float(cfg.max_active)
    out["decode_audio_seconds"] = round(audio_s, 1)
    return out
