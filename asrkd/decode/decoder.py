"""Hybrid decoding of frame posteriors into units and words.

``posteriors -> scaled likelihoods -> beam search (asrkd.decode.search) -> units -> words``:

- scaled likelihood of class ``c`` at frame ``t``: ``acoustic_scale * (log p(c | x_t) -
  prior_scale * log p(c))`` (Bayes' rule up to a per-frame constant; the priors are the
  training label frequencies, :mod:`asrkd.decode.priors`);
- the search runs over the unit loop or a word-list prefix tree (:mod:`asrkd.decode.graph`),
  built from the lang's HMM topology, with the unit n-gram LM (:mod:`asrkd.lang.unit_lm`);
- units -> words: sentencepiece pieces are detokenised (``▁`` opens a word); in a word-list
  graph the word ends on the path give the words; graphemes in a free loop are split into words
  at silences.

:func:`greedy_decode` (frame argmax, merge repeats, drop silence) is the baseline without
search. :class:`Decoder` ties it together for a :class:`asrkd.lang.inventory.Lang`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from asrkd.decode.graph import UnitGraph, UnitHmms, unit_loop_graph, word_list_graph
from asrkd.decode.search import beam_search
from asrkd.decode.wfst_decoder import WfstConfig
from asrkd.errors import AsrkdError
from asrkd.lang.unit_lm import UnitLM
from asrkd.lang.units import SPM_WORD_MARK, units_to_words

log = logging.getLogger("asrkd.decode")


@dataclass(frozen=True)
class DecodeConfig:
    # auto: word_list for lexicon and grapheme units (a letter loop finds word boundaries only at
    # silences: 25% WER on real yes/no where the word list gets 3%), unit_loop for sentencepiece.
    graph: Literal["auto", "unit_loop", "word_list"] = "auto"
    lm_order: int = 3  # order of the unit n-gram LM (>= 1)
    lm_weight: float = 1.0  # weight of LM log-probabilities (relative to scaled acoustics)
    insertion_penalty: float = 0.0  # subtracted from the log score per output unit (nats)
    acoustic_scale: float = 0.3  # scale of the acoustic log-likelihoods (Kaldi's acwt)
    prior_scale: float = 1.0  # log-likelihood = log posterior - prior_scale * log prior
    transition_scale: float = 1.0  # scale of HMM transition log-probabilities
    silence_logp: float = -0.69  # log-prob added when entering optional silence (log 0.5)
    # Minimum frames per HMM state (each state a chain of copies, as a Kaldi topology with a
    # minimum duration): a unit of S states lasts >= S x this. 1: the alignment topology.
    min_state_frames: int = 1
    # Pruning (nats of the scaled score). An LM cost is paid all at once when a unit is entered,
    # so the beams must exceed lm_weight x a typical unit LM cost (2-8 nats), or the right path
    # is pruned right after each unit entry: raise them with the LM weight.
    beam: float = 12.0  # search beam
    entry_beam: float = 8.0  # beam for entering a new unit (<= beam; entries multiply tokens)
    max_active: int = 400  # most tokens kept per frame
    sweep_lm_weights: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0, 1.5])  # dev sweep
    sweep_insertion_penalties: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])  # dev sweep
    # Decoding through a word graph (`--graph DIR`): scales, beams and its own dev grid. With a
    # graph, lm_weight / insertion_penalty above weigh the graph cost / words instead of units.
    wfst: WfstConfig = field(default_factory=WfstConfig)


@dataclass
class SearchResult:
    """Best path: ``nodes`` of the graph in order, each node's ``starts``/``ends`` frame
    (inclusive start, exclusive end), its total ``score``, whether it ended in a final state."""

    nodes: list[int]
    starts: list[int]
    ends: list[int]
    score: float
    reached_final: bool
    max_tokens: int


def search(
    loglik: np.ndarray,
    hmms: UnitHmms,
    graph: UnitGraph,
    lm: UnitLM,
    *,
    lm_weight: float,
    insertion_penalty: float,
    silence_logp: float,
    beam: float,
    max_active: int,
    transition_scale: float = 1.0,
    entry_beam: float | None = None,
) -> SearchResult:
    """Run :func:`asrkd.decode.search.beam_search` on ``loglik: (frames, C)`` (scaled) and trace back."""
    if loglik.ndim != 2:
        raise AsrkdError(f"loglik must be (frames, C), got shape {loglik.shape}")
    if int(hmms.cls.max(initial=-1)) >= loglik.shape[1]:
        raise AsrkdError(f"HMMs use class {int(hmms.cls.max())} but scores have {loglik.shape[1]} columns")
    if max_active < 1 or beam <= 0:
        raise AsrkdError("decoding needs beam > 0 and max_active >= 1")
    ll = np.ascontiguousarray(loglik, dtype=np.float32)
    rec_node, rec_start, rec_prev, last, score, reached, max_tokens = beam_search(
        ll, hmms.num_states, hmms.cls, hmms.self_lp, hmms.fwd_lp,
        graph.node_unit, graph.is_sil, graph.final, graph.to_roots, graph.succ_start,
        graph.succ_node, graph.roots, lm.start_state, *lm.arrays(), lm.eos,
        float(lm_weight), float(insertion_penalty), float(silence_logp), float(transition_scale),
        float(beam), int(max_active), float(beam if entry_beam is None else min(entry_beam, beam)),
    )
    nodes: list[int] = []
    starts: list[int] = []
    r = int(last)
    while r >= 0:
        nodes.append(int(rec_node[r]))
        starts.append(int(rec_start[r]))
        r = int(rec_prev[r])
    nodes.reverse()
    starts.reverse()
    ends = starts[1:] + [loglik.shape[0]] if nodes else []
    return SearchResult(nodes, starts, ends, float(score), bool(reached), int(max_tokens))


def uniform_lm(num_units: int) -> UnitLM:
    """A one-state LM giving every unit (and EOS) the same probability: "no LM"."""
    V = num_units
    return UnitLM(1, V, 0, np.array([0, V + 1], dtype=np.int32), np.arange(V + 1, dtype=np.int32),
                  np.full(V + 1, -math.log(V + 1), dtype=np.float32), np.zeros(V + 1, dtype=np.int32),
                  np.zeros(1, dtype=np.float32), np.full(1, -1, dtype=np.int32), [()])


def log_posteriors(post: np.ndarray) -> np.ndarray:
    """Posteriors ``(frames, C)`` -> float32 log posteriors, floored so a zero stays finite."""
    return np.log(np.maximum(np.asarray(post, dtype=np.float32), np.float32(1e-30)))


def scaled_loglik(log_post: np.ndarray, log_prior: np.ndarray | None, acoustic_scale: float,
                  prior_scale: float) -> np.ndarray:
    """``log_post: (frames, C)``, ``log_prior: (C,)`` -> ``(frames, C)`` float32 scaled log-likelihoods."""
    if log_post.ndim != 2:
        raise AsrkdError(f"log posteriors must be (frames, C), got {log_post.shape}")
    x = np.asarray(log_post, dtype=np.float32)
    if log_prior is not None:
        if log_prior.shape != (x.shape[1],):
            raise AsrkdError(f"priors have shape {log_prior.shape}, posteriors {x.shape}")
        x = x - np.float32(prior_scale) * log_prior.astype(np.float32)[None, :]
    return (np.float32(acoustic_scale) * x).astype(np.float32)


def greedy_units(log_post: np.ndarray, class_unit: np.ndarray, class_state: np.ndarray,
                 silence_unit: int) -> list[int]:
    """Frame argmax -> units: a new unit starts when the unit changes or its state goes back
    (so "no no" stays two units); silence frames separate units and are dropped.

    ``log_post: (frames, C)``; returns unit ids (silence is represented by -1 entries kept only to
    mark word breaks; callers that do not need them filter them out).
    """
    if log_post.shape[0] == 0:
        return []
    best = np.argmax(log_post, axis=1)
    units = class_unit[best]
    states = class_state[best]
    out: list[int] = []
    prev_u, prev_s = -2, -1
    for u, s in zip(units.tolist(), states.tolist()):
        if u != prev_u or s < prev_s:
            out.append(-1 if u == silence_unit else u)
        prev_u, prev_s = u, s
    # Collapse repeated silence markers.
    return [u for i, u in enumerate(out) if not (u == -1 and i > 0 and out[i - 1] == -1)]


@dataclass
class Hypothesis:
    """One decoded utterance: words, units (silence excluded), and the search result."""

    words: list[str]
    units: list[int]
    result: SearchResult | None = None

    @property
    def text(self) -> str:
        return " ".join(self.words)


class Decoder:
    """Decoder for one lang: HMMs from its topology, the graph, the LM and the priors.

    ``lang``: :class:`asrkd.lang.inventory.Lang`; ``lm``: unit LM over the lang's unit ids (None: no LM);
    ``log_prior: (C,)`` (None: posteriors used as they are); ``word_list``: words allowed by a
    word-list graph (required for lexicon units); ``excluded_units``: unit ids the graph leaves
    out (units never seen in training, :func:`asrkd.decode.priors.unseen_units`; words spelled
    with them leave the word list).
    """

    def __init__(self, lang, cfg: DecodeConfig, lm: UnitLM | None = None,  # noqa: ANN001
                 log_prior: np.ndarray | None = None, word_list: Sequence[str] | None = None,
                 excluded_units: Sequence[int] = ()):
        self.lang = lang
        self.cfg = cfg
        self.log_prior = log_prior
        U = len(lang.units)
        self.hmms = hmms_from_lang(lang).with_min_duration(cfg.min_state_frames)
        self.lm = lm if lm is not None else uniform_lm(U)
        if self.lm.num_units != U:
            raise AsrkdError(f"LM has {self.lm.num_units} units, lang {U}")
        kind = cfg.graph
        if kind == "auto":
            kind = "word_list" if lang.unit_type in ("lexicon", "grapheme") else "unit_loop"
        self.kind = kind
        excluded = set(int(u) for u in excluded_units)
        if excluded:
            log.info("decoding graph: %d unit(s) left out (no training frames): %s", len(excluded),
                     " ".join(lang.units[u] for u in sorted(excluded)))
        if kind == "word_list":
            if not word_list:
                raise AsrkdError("a word-list graph needs a word list (e.g. the training words)")
            spelled = lang_word_units(lang, word_list)
            kept = {w: us for w, us in spelled.items() if not excluded.intersection(us)}
            if not kept:
                raise AsrkdError("every word of the word list uses a unit with no training frames")
            self.graph = word_list_graph(kept, lang.silence_unit)
        else:
            if lang.unit_type == "lexicon":
                raise AsrkdError("lexicon (phone) units need graph=word_list to produce words")
            allowed = np.array([u != "<unk>" and i not in excluded for i, u in enumerate(lang.units)])
            word_start = None
            if lang.unit_type == "sentencepiece":
                word_start = np.array([u.startswith(SPM_WORD_MARK) for u in lang.units])
            self.graph = unit_loop_graph(U, lang.silence_unit, allowed, word_start)

    # A tied-state model's pdfs -> the lang's unit states (set by asrkd.decode.wer.make_decoder).
    class_map: np.ndarray | None = None

    def log_posteriors(self, post: np.ndarray) -> np.ndarray:
        """The model's posteriors ``(T, P)`` -> log posteriors ``(T, C)`` of the lang's classes:
        with a ``class_map`` (a tied-state model, every pdf inside one unit state), each unit
        state's pdfs summed (its posterior given the frame, whatever the context)."""
        post = np.asarray(post, dtype=np.float32)
        if self.class_map is not None:
            if post.shape[1] != self.class_map.shape[0]:
                raise AsrkdError(f"posteriors have {post.shape[1]} classes, the tied-state lang {self.class_map.shape[0]}")
            folded = np.zeros((post.shape[0], self.lang.num_classes), dtype=np.float32)
            np.add.at(folded.T, self.class_map, post.T)
            post = folded
        return log_posteriors(post)

    def loglik(self, log_post: np.ndarray) -> np.ndarray:
        return scaled_loglik(log_post, self.log_prior, self.cfg.acoustic_scale, self.cfg.prior_scale)

    def decode_loglik(self, loglik: np.ndarray, lm_weight: float | None = None,
                      insertion_penalty: float | None = None) -> Hypothesis:
        """Decode scaled log-likelihoods ``(frames, C)`` (from :meth:`loglik`)."""
        c = self.cfg
        res = search(loglik, self.hmms, self.graph, self.lm,
                     lm_weight=c.lm_weight if lm_weight is None else lm_weight,
                     insertion_penalty=c.insertion_penalty if insertion_penalty is None else insertion_penalty,
                     silence_logp=c.silence_logp, beam=c.beam, max_active=c.max_active,
                     transition_scale=c.transition_scale, entry_beam=c.entry_beam)
        return self._hypothesis(res)

    def decode(self, log_post: np.ndarray, **kw: float) -> Hypothesis:
        """Decode log posteriors ``(frames, C)``."""
        return self.decode_loglik(self.loglik(log_post), **kw)

    def greedy(self, log_post: np.ndarray) -> Hypothesis:
        """Greedy decode (no search, no LM) of log posteriors ``(frames, C)``."""
        seq = greedy_units(log_post, self.lang.class_unit, self.lang.class_state, self.lang.silence_unit)
        return Hypothesis(self._unit_words(seq), [u for u in seq if u >= 0])

    def _hypothesis(self, res: SearchResult) -> Hypothesis:
        g = self.graph
        units = [int(g.node_unit[n]) for n in res.nodes if not g.is_sil[n]]
        if self.kind == "word_list":
            words = []
            for i, n in enumerate(res.nodes):
                if g.is_sil[n] or g.node_word[n] < 0:
                    continue
                nxt = res.nodes[i + 1] if i + 1 < len(res.nodes) else -1
                # A word ends here if the path goes back to a word start (a root) or ends.
                if nxt < 0 or nxt in self._root_set:
                    words.append(g.words[g.node_word[n]])
        else:
            seq = [-1 if g.is_sil[n] else int(g.node_unit[n]) for n in res.nodes]
            words = self._unit_words(seq)
        return Hypothesis(words, units, res)

    @property
    def _root_set(self) -> set[int]:
        if not hasattr(self, "_roots_cache"):
            self._roots_cache = set(self.graph.roots.tolist())
        return self._roots_cache

    def _unit_words(self, seq: list[int]) -> list[str]:
        """Unit ids (with -1 for silence) -> words for a free unit loop."""
        names = self.lang.units
        if self.lang.unit_type == "sentencepiece":
            return units_to_words([names[u] for u in seq if u >= 0])
        words, cur = [], []
        for u in seq + [-1]:
            if u < 0:
                if cur:
                    words.append("".join(cur))
                cur = []
            else:
                cur.append(names[u])
        return words


def hmms_from_lang(lang) -> UnitHmms:  # noqa: ANN001
    """The lang's left-to-right unit HMMs as :class:`UnitHmms` (the alignment topology)."""
    U = len(lang.units)
    nst = np.asarray(lang.unit_num_states, dtype=np.int32)
    smax = int(nst.max())
    cls = np.zeros((U, smax), dtype=np.int32)
    self_lp = np.zeros((U, smax), dtype=np.float32)
    fwd_lp = np.zeros((U, smax), dtype=np.float32)
    loop, fwd = lang.self_loop_logprob, lang.forward_logprob
    for u in range(U):
        c = lang.unit_offset[u] + np.arange(nst[u])
        cls[u, :nst[u]] = c
        self_lp[u, :nst[u]] = loop[c]
        fwd_lp[u, :nst[u]] = fwd[c]
    return UnitHmms(nst, cls, self_lp, fwd_lp)


def lang_word_units(lang, words: Sequence[str]) -> dict[str, list[int]]:  # noqa: ANN001
    """``{word: unit ids}`` for the words the lang can spell (others are skipped, logged)."""
    out: dict[str, list[int]] = {}
    skipped = []
    for w in sorted(set(words)):
        try:
            out[w] = lang.transcript_units(w)[0]
        except AsrkdError:
            skipped.append(w)
    if skipped:
        log.warning("word list: %d word(s) cannot be spelled with the lang's units, e.g. %s",
                    len(skipped), skipped[:5])
    if not out:
        raise AsrkdError("no word of the word list can be spelled with the lang's units")
    return out
