"""Decoding through a word graph (HCLG, :mod:`asrkd.decode.hclg`) with kaldi-decoder (k2-fsa).

Scores (costs, lower is better) of a path, as Kaldi's decoding + scoring::

    cost = acoustic + lm_weight * graph + insertion_penalty * words
    acoustic = -acoustic_scale * sum_t (log p(pdf_t | x_t) - prior_scale * log p(pdf_t))

``graph`` is the HCLG path cost (LM, lexicon/silence and HMM transition log-probabilities). LM
weight and insertion penalty are chosen on dev (:mod:`asrkd.decode.graph_wer`). kaldi-decoder's
decoders see ``graph + log-likelihoods`` only, so the search runs on the equivalent
``acoustic / lm_weight + graph + (penalty / lm_weight) * words``: the log-likelihood matrix is
divided by the LM weight, and the penalty is put on every word arc of a copy of HCLG (one copy per
distinct ``penalty / lm_weight``, cached); the beam applies to that scaled cost.

- 1-best: ``FasterDecoder`` (beam, max-active); its best path gives the words and, per frame, the
  transition id, hence the unit and HMM state (word times, :func:`word_segments`).
- n-best: ``LatticeSimpleDecoder`` (beam, lattice-beam) -> raw state-level lattice -> word
  acceptor (total cost) -> determinised (best cost per word sequence) -> kaldifst
  ``shortest_path(n)``: the n best *distinct* word sequences.

Classes with no training frame (``unseen_pdfs``) get a log-likelihood of ``UNSEEN_LOGLIK``: their
network output was only ever pushed down, and dividing by a floored prior would make them win
(see :mod:`asrkd.decode.priors`); the graph itself stays independent of the labels.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from asrkd.decode.hclg import Graph
from asrkd.errors import AsrkdError

log = logging.getLogger("asrkd.decode.wfst_decoder")

UNSEEN_LOGLIK = -1.0e4  # scaled log-likelihood of a class never seen in training


@dataclass(frozen=True)
class WfstConfig:
    acoustic_scale: float = 0.1  # scale of log-likelihoods against graph costs (Kaldi's acwt)
    prior_scale: float = 1.0  # log-likelihood = log posterior - prior_scale * log prior
    beam: float = 13.0  # search beam (cost units after acoustic_scale / lm_weight)
    max_active: int = 7000  # most tokens kept per frame (1-best search)
    min_active: int = 200  # fewest tokens kept per frame (1-best search)
    lattice_beam: float = 6.0  # lattice pruning beam for n-best
    nbest: int = 10  # distinct word sequences per utterance in the n-best list (0: none)
    engine: Literal["kaldi", "numba"] = "kaldi"  # 1-best search: kaldi-decoder or asrkd's numba search
    # Dev grid: the unit-LM decoder's (DecodeConfig), LM weight 1 being Kaldi's LMWT = 1 / acwt.
    sweep_lm_weights: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0, 1.5])  # dev sweep
    sweep_insertion_penalties: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])  # dev sweep (nats)


@dataclass
class WfstHypothesis:
    """Best path: ``words``; ``tids (T,)`` transition id per frame (-1: none); ``cost`` the scaled
    total cost; ``reached_final`` whether it ended in a final state."""

    words: list[str]
    tids: np.ndarray
    cost: float
    reached_final: bool

    @property
    def text(self) -> str:
        return " ".join(self.words)


class WfstDecoder:
    """Decoder for one graph, one config and the class priors (``log_prior: (P,)`` or None)."""

    def __init__(self, graph: Graph, cfg: WfstConfig, log_prior: np.ndarray | None = None,
                 unseen_pdfs: np.ndarray | None = None):
        if cfg.beam <= 0 or cfg.max_active < 1 or cfg.lattice_beam <= 0:
            raise AsrkdError("graph decoding needs beam > 0, lattice_beam > 0 and max_active >= 1")
        self.graph = graph
        self.cfg = cfg
        P = graph.num_pdfs
        if log_prior is not None and log_prior.shape != (P,):
            raise AsrkdError(f"priors have shape {log_prior.shape}, the graph {P} pdfs")
        self.log_prior = log_prior
        self.unseen = None if unseen_pdfs is None or not np.any(unseen_pdfs) else np.asarray(unseen_pdfs, bool)
        self.tid_pdf = np.asarray(graph.tids.pdf, dtype=np.int64)
        self._graphs: dict[float, object] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="asrkd-hclg-")
        self._arrays = None

    # -- scores -------------------------------------------------------------------------------
    def loglik(self, log_post: np.ndarray) -> np.ndarray:
        """``log_post: (T, P)`` -> scaled log-likelihoods ``(T, P)`` float32."""
        if log_post.ndim != 2 or log_post.shape[1] != self.graph.num_pdfs:
            raise AsrkdError(f"log posteriors {log_post.shape} do not match the graph's {self.graph.num_pdfs} pdfs")
        x = np.asarray(log_post, dtype=np.float32)
        if self.log_prior is not None:
            x = x - np.float32(self.cfg.prior_scale) * self.log_prior.astype(np.float32)[None, :]
        x = np.float32(self.cfg.acoustic_scale) * x
        if self.unseen is not None:
            x[:, self.unseen] = UNSEEN_LOGLIK
        return np.ascontiguousarray(x, dtype=np.float32)

    def _tid_matrix(self, loglik: np.ndarray, lm_weight: float) -> np.ndarray:
        """Columns per transition id (DecodableCtc reads column ``label - 1``), divided by the LM weight."""
        return np.ascontiguousarray(loglik[:, self.tid_pdf] / np.float32(lm_weight), dtype=np.float32)

    def _graph_with_penalty(self, per_word: float):  # noqa: ANN202
        """HCLG with ``per_word`` added to every arc that outputs a word (cached per value)."""
        key = round(float(per_word), 6)
        if key == 0.0:
            return self.graph.hclg
        if key not in self._graphs:
            import kaldifst

            from asrkd.decode.fstio import _ARC, _STATE, _read_string

            buf = bytearray((self.graph.directory / "HCLG.fst").read_bytes())
            _, off = _read_string(bytes(buf), 4)
            _, off = _read_string(bytes(buf), off)
            ns, na = struct.unpack_from("<qq", buf, off + 8 + 16)
            arcs = np.frombuffer(buf, dtype=_ARC, count=na, offset=off + 40 + ns * _STATE.itemsize)
            w = arcs["weight"]  # a view into buf
            w[arcs["olabel"] > 0] += np.float32(key)
            # Forked decoding workers share the temporary directory: a name of this process's
            # own (pid), so that two workers never write or read each other's half-written file.
            path = Path(self._tmp.name) / f"HCLG.pen{len(self._graphs)}.{os.getpid()}.fst"
            path.write_bytes(bytes(buf))
            fst = kaldifst.StdConstFst.read(str(path))
            if fst is None:
                raise AsrkdError(f"could not read the graph with insertion penalty {key} back from {path}")
            self._graphs[key] = fst
        return self._graphs[key]

    # -- search -------------------------------------------------------------------------------
    def decode(self, loglik: np.ndarray, lm_weight: float = 1.0, insertion_penalty: float = 0.0) -> WfstHypothesis:
        """1-best of scaled log-likelihoods ``(T, P)`` (from :meth:`loglik`)."""
        if self.cfg.engine == "numba":
            return self._decode_numba(loglik, lm_weight, insertion_penalty)
        import kaldi_decoder
        import kaldifst

        if lm_weight <= 0:
            raise AsrkdError(f"lm_weight must be > 0, got {lm_weight}")
        T = loglik.shape[0]
        if T == 0:
            return WfstHypothesis([], np.zeros(0, np.int32), 0.0, True)
        fst = self._graph_with_penalty(insertion_penalty / lm_weight)
        opts = kaldi_decoder.FasterDecoderOptions(beam=self.cfg.beam, max_active=self.cfg.max_active,
                                                  min_active=self.cfg.min_active)
        dec = kaldi_decoder.FasterDecoder(fst, opts)
        dec.decode(kaldi_decoder.DecodableCtc(self._tid_matrix(loglik, lm_weight)))
        reached = bool(dec.reached_final())
        ok, best = dec.get_best_path()
        if not ok:
            return WfstHypothesis([], np.full(T, -1, np.int32), float("inf"), False)
        ok, ilabels, olabels, w = kaldifst.get_linear_symbol_sequence(best)
        tids = np.asarray(ilabels, dtype=np.int32) - 1
        if len(tids) != T:
            raise AsrkdError(f"best path has {len(tids)} emitting arcs for {T} frames")
        cost = lm_weight * (w.value1 + w.value2)
        return WfstHypothesis([self.graph.words[o] for o in olabels], tids, float(cost), reached)

    def _decode_numba(self, loglik: np.ndarray, lm_weight: float, insertion_penalty: float) -> WfstHypothesis:
        from asrkd.decode.fst_search import fst_beam_search
        from asrkd.decode.hclg import hclg_arrays

        if self._arrays is None:
            self._arrays = hclg_arrays(self.graph)
        a = self._arrays
        T = loglik.shape[0]
        tids, olabels, cost, reached = fst_beam_search(
            np.ascontiguousarray(loglik, dtype=np.float32), self.tid_pdf, a.start, a.final, a.arc_start,
            a.ilabel, a.olabel, a.weight, a.nextstate, float(lm_weight), float(insertion_penalty),
            float(self.cfg.beam * lm_weight), int(self.cfg.max_active))
        if len(tids) != T:
            raise AsrkdError(f"best path has {len(tids)} frames for {T}")
        return WfstHypothesis([self.graph.words[o] for o in olabels.tolist()], tids, float(cost), bool(reached))

    def nbest(self, loglik: np.ndarray, n: int, lm_weight: float = 1.0,
              insertion_penalty: float = 0.0) -> list[tuple[list[str], float]]:
        """The ``n`` best distinct word sequences with their total costs, best first."""
        import kaldi_decoder
        import kaldifst

        if loglik.shape[0] == 0 or n < 1:
            return []
        fst = self._graph_with_penalty(insertion_penalty / lm_weight)
        cfg = kaldi_decoder.LatticeSimpleDecoderConfig(beam=self.cfg.beam, lattice_beam=self.cfg.lattice_beam)
        dec = kaldi_decoder.LatticeSimpleDecoder(fst, cfg)
        dec.decode(kaldi_decoder.DecodableCtc(self._tid_matrix(loglik, lm_weight)))
        ok, lat = dec.get_raw_lattice()
        if not ok:
            return []
        words = word_acceptor(lat)
        det = kaldifst.determinize(words)
        out = []
        for path in kaldifst.convert_nbest_to_vector(kaldifst.shortest_path(det, n=n)):
            ok, ilabels, _, w = kaldifst.get_linear_symbol_sequence(path)
            out.append(([self.graph.words[i] for i in ilabels], float(lm_weight * w.value)))
        out.sort(key=lambda x: x[1])
        return out


def word_acceptor(lat):  # noqa: ANN001, ANN201
    """Raw lattice (LatticeWeight arcs) -> tropical acceptor over its output words, each arc's
    cost graph + acoustic, epsilons removed."""
    import kaldifst

    lines = []
    for line in lat.to_str(show_weight_one=True).splitlines():
        f = line.split()
        if len(f) >= 4:
            g, a = f[4].split(",") if len(f) > 4 else ("0", "0")
            lines.append(f"{f[0]} {f[1]} {f[3]} {f[3]} {float(g) + float(a)}")
        elif f:
            g, a = f[1].split(",") if len(f) > 1 else ("0", "0")
            lines.append(f"{f[0]} {float(g) + float(a)}")
    fst = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.rmepsilon(fst)
    return fst


def word_segments(hyp: WfstHypothesis, graph: Graph, silence_unit: int = 0) -> list[tuple[str, int, int]]:
    """``[(word, first_frame, end_frame_exclusive), ...]`` of a best path: its frames' units
    (from the transition ids; a unit starts at an entry into its first HMM state) are matched,
    silence skipped, to the words' pronunciations in order."""
    tids = hyp.tids
    if len(tids) == 0 or not hyp.words:
        return []
    if np.any(tids < 0):
        raise AsrkdError("best path without transition ids: no word times")
    units = graph.tids.unit[tids]
    new = (graph.tids.state[tids] == 0) & (graph.tids.loop[tids] == 0)
    new[0] = True
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(tids))
    segs = [(int(units[s]), int(s), int(e)) for s, e in zip(starts, ends) if units[s] != silence_unit]
    out, i = [], 0
    for w in hyp.words:
        n = len(graph.prons.get(w, ()))
        if n == 0 or i + n > len(segs):
            raise AsrkdError(f"best path units do not spell {w!r}")
        out.append((w, segs[i][1], segs[i + n - 1][2]))
        i += n
    return out
