"""The word decoding graph (asrkd.decode.hclg) and its decoder (asrkd.decode.wfst_decoder)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from asrkd.decode.hclg import build_hclg, load_graph, make_g
from asrkd.decode.lexicon_fst import word_pronunciations
from asrkd.decode.synthetic import peaky_log_posteriors
from asrkd.decode.wfst_decoder import WfstConfig, WfstDecoder, word_segments
from asrkd.errors import AsrkdError
from asrkd.lang.inventory import LangConfig, make_lang
from asrkd.lang.tree import BOUNDARY, MonophoneTree

LN10 = math.log(10.0)

# Words: AB, BA, A, BAB (BAB is in the LM but in no training transcript). Backoff weights are
# given for every unigram with a following bigram.
ARPA = """\\data\\
ngram 1=6
ngram 2=5

\\1-grams:
-1.0\t<s>\t-0.5
-0.5\t</s>
-0.3\tAB\t-0.2
-0.7\tBA\t-0.1
-0.9\tA
-1.2\tBAB

\\2-grams:
-0.1\t<s> AB
-0.2\tAB BA
-0.3\tBA </s>
-0.2\tA </s>
-0.15\tBA BAB

\\end\\
"""


def _lang(tmp_path: Path, texts: list[str], **kw):  # noqa: ANN003, ANN202
    cfg = LangConfig(**{"unit_type": "grapheme", "states_per_unit": 2, "sil_states": 2, **kw})
    return make_lang(texts, tmp_path / "lang", cfg)


def _arpa(tmp_path: Path, text: str = ARPA) -> Path:
    p = tmp_path / "lm.arpa"
    p.write_text(text)
    return p


def _sentence_cost(G, word_ids: list[int]) -> float:  # noqa: ANN001
    """Cost of the best path through G whose output is ``word_ids`` (``#0`` arcs are free)."""
    import kaldifst

    A = kaldifst.make_linear_acceptor(word_ids)
    kaldifst.arcsort(G, sort_type="olabel")
    path = kaldifst.shortest_path(kaldifst.compose(G, A))
    ok, _, out, w = kaldifst.get_linear_symbol_sequence(path)
    assert ok and out == word_ids
    return float(w.value)


def test_arpa_g_gives_the_hand_computed_path_costs(tmp_path: Path) -> None:
    from asrkd.decode.fstio import read_symbols

    G = make_g(_arpa(tmp_path), tmp_path)
    ids = {w: i for i, w in enumerate(read_symbols(tmp_path / "words.txt"))}
    cases = {
        ("AB", "BA"): -(0.1 + 0.2 + 0.3),  # three bigrams
        ("BA",): -(0.5 + 0.7 + 0.3),  # <s> backs off to BA, then BA </s>
        ("A",): -(0.5 + 0.9 + 0.2),
        ("AB", "A"): -(0.1 + 0.2 + 0.9 + 0.2),  # AB backs off (-0.2) to A
        ("BA", "BAB"): -(0.5 + 0.7 + 0.15 + 0.5),  # BAB has no backoff weight: </s> unigram
    }
    for words, log10p in cases.items():
        assert _sentence_cost(G, [ids[w] for w in words]) == pytest.approx(-log10p * LN10, abs=1e-4)


def _planted(units_per_word: list[list[int]], lang, rng, frames: int = 4) -> np.ndarray:  # noqa: ANN001
    """Class path: silence, the words' units (states ``frames`` frames each) with silence between
    some of them, silence."""
    path: list[int] = []
    sil = list(range(lang.unit_offset[0], lang.unit_offset[0] + lang.unit_num_states[0]))

    def add(classes: list[int]) -> None:
        for c in classes:
            path.extend([c] * frames)

    add(sil)
    for i, units in enumerate(units_per_word):
        for u in units:
            add(list(range(lang.unit_offset[u], lang.unit_offset[u] + lang.unit_num_states[u])))
        if i + 1 == len(units_per_word) or rng.random() < 0.5:
            add(sil)  # one optional silence between words (L has no silence loop), and at the end
    return np.array(path, dtype=np.int32)


@pytest.mark.parametrize("engine", ["kaldi", "numba"])
def test_tiny_hclg_decodes_planted_words_with_times(tmp_path: Path, engine: str) -> None:
    lang = _lang(tmp_path, ["AB BA", "BA AB A"])
    graph = build_hclg(lang, _arpa(tmp_path), tmp_path / "graph")
    dec = WfstDecoder(graph, WfstConfig(acoustic_scale=1.0, engine=engine))
    rng = np.random.default_rng(0)
    for sent in (["AB", "BA"], ["BA", "A", "AB"], ["A"], ["AB", "BA", "BAB"]):
        units = [graph.prons[w] for w in sent]
        path = _planted(units, lang, rng)
        lp = peaky_log_posteriors(path, lang.num_classes, rng, confusion=0.0)
        hyp = dec.decode(dec.loglik(lp))
        assert hyp.words == sent and hyp.reached_final
        # Word times from the best path: each word's span covers its planted frames.
        segs = word_segments(hyp, graph)
        assert [s[0] for s in segs] == sent
        word_classes = lang.class_unit[path] != 0
        for (_, a, b) in segs:
            assert word_classes[a] and word_classes[b - 1]


def test_oov_word_gets_a_pronunciation_and_is_decoded(tmp_path: Path) -> None:
    """BAB is in no training transcript: the LM has it, the tokenizer spells it, it decodes."""
    texts = ["AB BA", "BA AB A"]
    assert "BAB" not in {w for t in texts for w in t.split()}
    for kind, extra in (("grapheme", {}), ("sentencepiece", {"vocab_size": 6})):
        d = tmp_path / kind
        d.mkdir()
        lang = _lang(d, texts * 5, unit_type=kind, **extra)
        graph = build_hclg(lang, _arpa(d), d / "graph")
        assert "BAB" in graph.prons and graph.info["words_without_pronunciation"] == 0
        dec = WfstDecoder(graph, WfstConfig(acoustic_scale=1.0))
        rng = np.random.default_rng(1)
        path = _planted([graph.prons["BA"], graph.prons["BAB"]], lang, rng)
        hyp = dec.decode(dec.loglik(peaky_log_posteriors(path, lang.num_classes, rng, confusion=0.0)))
        assert hyp.words == ["BA", "BAB"], kind


def test_best_nbest_entry_equals_the_1best(tmp_path: Path) -> None:
    lang = _lang(tmp_path, ["AB BA", "BA AB A"])
    graph = build_hclg(lang, _arpa(tmp_path), tmp_path / "graph")
    dec = WfstDecoder(graph, WfstConfig(acoustic_scale=1.0, lattice_beam=8.0))
    rng = np.random.default_rng(2)
    for trial in range(6):
        sent = [str(w) for w in rng.choice(["AB", "BA", "A"], size=int(rng.integers(1, 4)))]
        path = _planted([graph.prons[w] for w in sent], lang, rng, frames=3)
        # Noisy posteriors, so the n-best lists have competitors.
        ll = dec.loglik(peaky_log_posteriors(path, lang.num_classes, rng, margin=2.5, confusion=0.3))
        for w, p in ((1.0, 0.0), (1.5, 1.0)):
            best = dec.decode(ll, w, p)
            nb = dec.nbest(ll, 5, w, p)
            assert nb and nb[0][0] == best.words
            assert nb[0][1] == pytest.approx(best.cost, rel=1e-4, abs=1e-3)
            costs = [c for _, c in nb]
            assert costs == sorted(costs) and len({tuple(x) for x, _ in nb}) == len(nb)


def test_homophones_and_prefixes_get_disambiguation_symbols(tmp_path: Path) -> None:
    lex = tmp_path / "lex.txt"
    lex.write_text("RED R EH D\nREAD R EH D\nRE R EH\nDEER D IY R\n")
    lang = make_lang(["RED READ RE DEER"], tmp_path / "lang", LangConfig(unit_type="lexicon", lexicon=str(lex),
                                                                          states_per_unit=1, sil_states=1))
    lexicon = word_pronunciations(lang, ["RED", "READ", "RE", "DEER"])
    k = {w: d for w, _, d in lexicon.prons}
    assert k["DEER"] == 0 and k["RE"] >= 1  # RE is a prefix of READ/RED
    assert {k["RED"], k["READ"]} == {1, 2}  # homophones tell apart by #1 / #2
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=6\n\n\\1-grams:\n-99\t<s>\n-0.7\t</s>\n-0.7\tRED\n-0.7\tREAD\n"
                    "-0.7\tRE\n-0.7\tDEER\n\n\\end\\\n")
    graph = build_hclg(lang, arpa, tmp_path / "graph")  # determinizes only with #k
    assert graph.info["num_disambig"] == lexicon.num_disambig + 1


class _LeftContextTree:
    """Triphone-style tree: unit 1's states get their own pdfs after unit 2 (left context)."""

    context_width = 3
    central_position = 1

    def __init__(self, lang) -> None:  # noqa: ANN001
        self.base = MonophoneTree(lang)
        self.num_units = self.base.num_units
        self.unit_states = self.base.unit_states
        self.num_pdfs = self.base.num_pdfs + int(self.unit_states[1])
        self.fingerprint = "left-context-test-tree"

    def pdfs(self, left, unit, right, state):  # noqa: ANN001, ANN201
        p = self.base.pdfs(left, unit, right, state).astype(np.int64)
        special = (np.asarray(unit) == 1) & (np.asarray(left) == 2)
        p[special] = self.base.num_pdfs + np.asarray(state)[special]
        return p.astype(np.int32)


def test_context_dependent_tree_builds_c_and_decodes(tmp_path: Path) -> None:
    lang = _lang(tmp_path, ["AB BA", "BA AB A"])
    tree = _LeftContextTree(lang)
    graph = build_hclg(lang, _arpa(tmp_path), tmp_path / "graph", tree=tree)
    assert graph.info["context_width"] == 3 and graph.num_pdfs == tree.num_pdfs
    rng = np.random.default_rng(3)
    # "AB BA" without silence between: units sil A B B A sil; the second A follows B, so it takes
    # the special pdfs, and only the context-dependent graph explains them.
    units = [0, 1, 2, 2, 1, 0]
    path = []
    for j, u in enumerate(units):
        left = units[j - 1] if j else BOUNDARY
        right = units[j + 1] if j + 1 < len(units) else BOUNDARY
        for st in range(int(lang.unit_num_states[u])):
            pdf = tree.pdfs(np.array([left]), np.array([u]), np.array([right]), np.array([st]))[0]
            path += [int(pdf)] * 4
    path = np.array(path, dtype=np.int32)
    assert path.max() >= MonophoneTree(lang).num_pdfs
    for engine in ("kaldi", "numba"):
        dec = WfstDecoder(graph, WfstConfig(acoustic_scale=1.0, engine=engine))
        hyp = dec.decode(dec.loglik(peaky_log_posteriors(path, tree.num_pdfs, rng, confusion=0.0)))
        assert hyp.words == ["AB", "BA"], engine


def test_graph_dir_is_reused_refused_and_rebuilt(tmp_path: Path) -> None:
    lang = _lang(tmp_path, ["AB BA"])
    out = tmp_path / "graph"
    g1 = build_hclg(lang, _arpa(tmp_path), out)
    stamp = (out / "HCLG.fst").stat().st_mtime_ns
    g2 = build_hclg(lang, _arpa(tmp_path), out)
    assert g2.fingerprint == g1.fingerprint and (out / "HCLG.fst").stat().st_mtime_ns == stamp
    other = tmp_path / "other.arpa"
    other.write_text(ARPA.replace("-0.9\tA", "-0.8\tA"))
    with pytest.raises(AsrkdError, match="another lang/tree/LM"):
        build_hclg(lang, other, out)
    assert build_hclg(lang, other, out, force=True).fingerprint != g1.fingerprint
    assert load_graph(out).info["sizes"]["HCLG"]["arcs"] > 0


def test_graph_wer_end_to_end_in_parallel(tmp_path: Path) -> None:
    """evaluate --graph plumbing: posteriors stored as the sets' "features", priors from labels,
    a dev sweep, 2 worker processes; hyp, word CTM and n-best (best first = hyp) are written."""
    import json

    from asrkd.align.ctm import read_ctm
    from asrkd.data.datadir import write_table
    from asrkd.decode.decoder import DecodeConfig
    from asrkd.decode.graph_wer import evaluate_graph_wer, make_graph_decoder
    from asrkd.framestore import write_store

    lang = _lang(tmp_path, ["AB BA", "BA AB A"])
    build_hclg(lang, _arpa(tmp_path), tmp_path / "graph")
    graph = load_graph(tmp_path / "graph")
    rng = np.random.default_rng(4)
    sets = {"dev": {"d-1": "AB BA", "d-2": "A"}, "test": {"t-1": "BA A", "t-2": "AB BA BAB", "t-3": "AB"}}
    for name, texts in sets.items():
        write_table(tmp_path / name / "text", texts)
        items = [(u, np.exp(peaky_log_posteriors(_planted([graph.prons[w] for w in t.split()], lang, rng),
                                                 lang.num_classes, rng, confusion=0.0)))
                 for u, t in texts.items()]
        write_store(tmp_path / name / "feats", items, "float32", (lang.num_classes,))
    labels = [("s-1", np.arange(lang.num_classes, dtype=np.int32).repeat(5))]
    write_store(tmp_path / "labels", labels, "int32", (), attrs={"num_classes": lang.num_classes})
    wcfg = WfstConfig(acoustic_scale=0.5, sweep_lm_weights=[0.5, 1.0], sweep_insertion_penalties=[0.0, 1.0])
    decoder = make_graph_decoder(tmp_path / "graph", tmp_path / "labels", wcfg)
    out = tmp_path / "eval"
    result = evaluate_graph_wer(lambda f: f, tmp_path / "test", out, decoder, DecodeConfig(wfst=wcfg),
                                dev_dir=tmp_path / "dev", nj=2)
    assert result["wer"]["rate"] == 0.0 and result["decode_rtf"] > 0 and result["nj"] == 2
    assert len(json.loads((out / "sweep.json").read_text())["table"]) == 4
    assert (out / "hyp").read_text() == "t-1 BA A\nt-2 AB BA BAB\nt-3 AB\n"
    ctm = read_ctm(out / "ctm")
    assert [w for w, _, _ in ctm["t-2"]] == ["AB", "BA", "BAB"]
    assert all(a < b for w, a, b in ctm["t-2"]) and ctm["t-2"][0][2] <= ctm["t-2"][1][1]
    best = {}
    for line in (out / "nbest.txt").read_text().splitlines():
        utt, rank, _cost, *words = line.split()
        if rank == "1":
            best[utt] = " ".join(words)
    assert best == {u: t for u, t in sets["test"].items()}


def test_decoding_workers_die_with_their_parent(tmp_path: Path) -> None:
    """A killed `asrkd evaluate` leaves no graph-decoding worker behind (PR_SET_PDEATHSIG)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    pids = tmp_path / "pids"
    script = (
        "import os, time\n"
        "from asrkd.decode.graph_wer import ParallelDecoder\n"
        "pd = ParallelDecoder(object(), nj=2)\n"
        "busy = [pd.pool.apply_async(time.sleep, (60,)) for _ in range(2)]  # both workers mid-task\n"
        "time.sleep(0.5)\n"
        f"open({str(pids)!r}, 'w').write(' '.join(str(p.pid) for p in pd.pool._pool))\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1])
    for _ in range(200):
        if pids.is_file() and pids.read_text().strip():
            break
        time.sleep(0.05)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [w for w in workers if os.path.exists(f"/proc/{w}") and
                 Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"]
    assert alive == [], f"workers {alive} outlived their killed parent"
