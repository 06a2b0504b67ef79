"""Build the decoding graph HCLG for a (lang + tied-state tree, word LM) pair into a graph dir.

Kaldi's ``mkgraph.sh`` with OpenFst through kaldifst (k2-fsa) and kaldilm's ``arpa2fst``::

    G   = arpa2fst(LM, disambig #0)                  word n-gram, #0 on backoff arcs
    LG  = min_enc(det*_log(L o G))                   L: lexicon_fst (optional silence, #k)
    CLG = compose_context(#k, width, central, LG)    triphone windows; skipped for width 1
    HCLG= min_enc(rm_disambig(det*_log(H o CLG)))    H: hmm_fst (tied states, self-loops inside)

``det*`` is Kaldi's ``determinize_star`` (epsilon removal and determinisation in one, in the log
semiring as mkgraph does), ``min_enc`` its ``minimize_encoded``; the disambiguation symbols are
replaced by epsilon after the last determinisation. Input labels of HCLG are transition ids + 1 (0 is
epsilon; a tid is a (unit, state, pdf) triple), output labels word ids of ``words.txt``. The context width comes from the tree: 1 for
:class:`asrkd.lang.tree.MonophoneTree` (context plays no part), else ``tree.context_width``
(default 3, central position 1). Self-loops are part of H (see :mod:`asrkd.decode.hmm_fst`).

Graph directory (Kaldi keeps it in ``exp/<tree>/graph_<lm>/``; here ``data/lang/graph_<lm>/``:
one graph serves every DNN trained on the same tied states)::

    HCLG.fst     OpenFst ConstFst (kaldi-decoder reads it; asrkd.decode.fstio maps it to arrays);
                 input labels tid + 1, output labels word ids
    tids.npz     unit, state, pdf, self-loop flag of every transition id (asrkd.decode.hmm_fst)
    lexicon.txt  <word> <unit id> ... of every word in L (for word times from the best path)
    G.fst        the grammar (VectorFst), for LM checks
    words.txt    word symbol table (kaldilm's: <eps> 0, #0 1, <s> 2, </s> 3, words...)
    graph.json   fingerprint, inputs, sizes, build time, words without a pronunciation
    .done        written last

The fingerprint covers the lang (its own fingerprint), the tree, the ARPA file's sha256 and the
graph version: a complete directory with the same fingerprint is reused, another is refused
(``force`` rebuilds).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asrkd.decode.fstio import read_symbols, write_const_fst, zero_input_labels_above
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, atomic_write_text, clear_done, is_done, mark_done, read_json, sha256_file, sha256_strings

log = logging.getLogger("asrkd.decode.hclg")

GRAPH_VERSION = 1
SPECIAL_WORDS = ("<eps>", "#0", "<s>", "</s>")


@dataclass
class Graph:
    """A built graph directory: ``hclg`` (kaldifst ``StdConstFst``), ``words`` (id -> word),
    ``info`` (graph.json), ``tids`` (unit/state/pdf per transition id), ``prons`` (word -> units)."""

    directory: Path
    hclg: Any
    words: list[str]
    info: dict[str, Any]
    tids: Any
    prons: dict[str, list[int]]

    @property
    def num_pdfs(self) -> int:
        return int(self.info["num_pdfs"])

    @property
    def fingerprint(self) -> str:
        return str(self.info["fingerprint"])


def tree_context(tree) -> tuple[int, int]:  # noqa: ANN001
    """(context width, central position) of a tied-state tree."""
    from asrkd.lang.tree import MonophoneTree

    if isinstance(tree, MonophoneTree):
        return 1, 0
    return int(getattr(tree, "context_width", 3)), int(getattr(tree, "central_position", 1))


def tree_fingerprint(lang, tree) -> str:  # noqa: ANN001
    from asrkd.lang.tree import MonophoneTree

    if isinstance(tree, MonophoneTree):
        return f"monophone:{lang.fingerprint}"
    fp = getattr(tree, "fingerprint", None)
    if not fp:
        raise AsrkdError(f"{type(tree).__name__} has no fingerprint: cannot key a decoding graph on it")
    return str(fp)


def graph_fingerprint(lang, tree, arpa: Path, min_state_frames: int = 1) -> str:  # noqa: ANN001
    return sha256_strings([f"hclg-v{GRAPH_VERSION}", lang.fingerprint, tree_fingerprint(lang, tree),
                           sha256_file(Path(arpa)), f"min_state_frames={min_state_frames}"])


def lm_vocabulary(words: list[str]) -> list[str]:
    """The words of a ``words.txt`` list that L should spell (specials and ``<unk>`` left out)."""
    return [w for w in words if w and w not in SPECIAL_WORDS and w.lower() != "<unk>"]


def make_g(arpa: Path, out_dir: Path):  # noqa: ANN201
    """G from an ARPA file (kaldilm arpa2fst, ``#0`` on backoff arcs, ``<s>``/``</s>`` as
    start/final): writes ``G.fst`` and ``words.txt`` in ``out_dir`` and returns G."""
    import kaldifst
    import kaldilm

    if not Path(arpa).is_file():
        raise AsrkdError(f"ARPA LM not found: {arpa}")
    kaldilm.arpa2fst(str(arpa), str(out_dir / "G.fst"), disambig_symbol="#0",
                     write_symbol_table=str(out_dir / "words.txt"), max_arpa_warnings=10)
    return kaldifst.StdVectorFst.read(str(out_dir / "G.fst"))


def _compose(a, b):  # noqa: ANN001, ANN202
    import kaldifst

    kaldifst.arcsort(a, sort_type="olabel")
    return kaldifst.compose(a, b)


def build_hclg(lang, arpa: Path, out_dir: Path, tree=None, force: bool = False,  # noqa: ANN001
               min_state_frames: int = 1) -> Graph:
    """Build (or reuse) the graph directory ``out_dir`` for ``lang`` (+ ``tree``, default the
    context-independent :class:`MonophoneTree`) and the ARPA LM ``arpa``; see module docstring.
    ``min_state_frames``: minimum frames per HMM state (:func:`asrkd.decode.hmm_fst.hmm_fst`)."""
    import kaldifst

    from asrkd.decode.hmm_fst import hmm_fst
    from asrkd.decode.lexicon_fst import lexicon_fst, word_pronunciations
    from asrkd.lang.tree import MonophoneTree

    tree = MonophoneTree(lang) if tree is None else tree
    out_dir = Path(out_dir)
    fp = graph_fingerprint(lang, tree, arpa, min_state_frames)
    if is_done(out_dir) and not force:
        info = read_json(out_dir / "graph.json")
        if info.get("fingerprint") != fp:
            raise AsrkdError(f"{out_dir} holds a graph of another lang/tree/LM (fingerprint "
                             f"{str(info.get('fingerprint'))[:12]} != {fp[:12]}); use --force to rebuild")
        log.info("%s: graph complete (fingerprint %s), reused", out_dir, fp[:12])
        return load_graph(out_dir)
    if tree.num_units != len(lang.units):
        raise AsrkdError(f"tree has {tree.num_units} units, the lang {len(lang.units)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_done(out_dir)
    t0 = time.perf_counter()
    times: dict[str, float] = {}

    G = make_g(Path(arpa), out_dir)
    words = read_symbols(out_dir / "words.txt")
    word_ids = {w: i for i, w in enumerate(words)}
    lex = word_pronunciations(lang, lm_vocabulary(words))
    if lex.skipped:
        log.warning("%d LM word(s) without a pronunciation in %s (left out of L), e.g. %s",
                    len(lex.skipped), lang.directory, lex.skipped[:8])
    U = len(lang.units)
    disambig = [U + 1 + k for k in range(lex.num_disambig + 1)]  # #0..#K on L's input side
    L = lexicon_fst(lex, word_ids, U, lang.silence_unit, lang.sil_prob, word_ids["#0"])
    times["G+L"] = time.perf_counter() - t0

    t = time.perf_counter()
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = _compose(L, G)
    kaldifst.determinize_star(LG, use_log=True)
    kaldifst.minimize_encoded(LG)
    times["LG"] = time.perf_counter() - t

    t = time.perf_counter()
    width, central = tree_context(tree)
    if width > 1:
        CLG, ilabel_info = kaldifst.compose_context(disambig, width, central, LG)
    else:
        CLG = LG
        max_label = U + len(disambig)
        ilabel_info = [[]] + [[lab] if lab <= U else [-lab] for lab in range(1, max_label + 1)]
    times["CLG"] = time.perf_counter() - t

    t = time.perf_counter()
    H, tids = hmm_fst(tree, ilabel_info, central, lang.self_loop_prob, disambig, min_state_frames)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    HCLG = _compose(H, CLG)
    kaldifst.determinize_star(HCLG, use_log=True)
    HCLG = zero_input_labels_above(HCLG, len(tids), out_dir)  # disambiguation symbols -> eps
    kaldifst.minimize_encoded(HCLG)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    times["HCLG"] = time.perf_counter() - t
    build_s = time.perf_counter() - t0
    write_const_fst(HCLG, out_dir / "HCLG.fst")
    np.savez(out_dir / "tids.npz", unit=tids.unit, state=tids.state, pdf=tids.pdf, loop=tids.loop)
    atomic_write_text(out_dir / "lexicon.txt", "".join(f"{w} {' '.join(map(str, u))}\n" for w, u, _ in lex.prons))
    info = {
        "format": "asrkd-graph", "version": GRAPH_VERSION, "fingerprint": fp,
        "lang": str(lang.directory), "lang_fingerprint": lang.fingerprint,
        "tree": tree_fingerprint(lang, tree), "arpa": str(arpa), "arpa_sha256": sha256_file(Path(arpa)),
        "num_pdfs": int(tree.num_pdfs), "num_tids": len(tids), "context_width": width, "central_position": central,
        "self_loops": "in H before determinisation", "self_loop_prob": lang.self_loop_prob,
        "sil_prob": lang.sil_prob, "min_state_frames": min_state_frames, "lm_words": len(lm_vocabulary(words)), "words_in_lexicon": len(lex.prons),
        "words_without_pronunciation": len(lex.skipped), "skipped_words_sample": lex.skipped[:50],
        "num_disambig": lex.num_disambig + 1, "context_labels": len(ilabel_info),
        "sizes": {"G": _size(G), "L": _size(L), "LG": _size(LG), "CLG": _size(CLG), "H": _size(H),
                  "HCLG": _size(HCLG)},
        "build_seconds": build_s, "step_seconds": times,
    }
    atomic_write_json(out_dir / "graph.json", info)
    mark_done(out_dir, {"fingerprint": fp})
    log.info("%s: HCLG %d states, %d arcs, built in %.1f s (%s)", out_dir, info["sizes"]["HCLG"]["states"],
             info["sizes"]["HCLG"]["arcs"], build_s, ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
    return load_graph(out_dir)


def _size(fst) -> dict[str, int]:  # noqa: ANN001
    """States and arcs of a kaldifst FST (counted from a ConstFst copy's header, not by a Python
    call per state)."""
    import kaldifst

    c = kaldifst.StdConstFst(fst)
    return {"states": int(c.num_states), "arcs": int(sum_arcs(c))}


def sum_arcs(fst) -> int:  # noqa: ANN001
    """Number of arcs of a ConstFst, from the header of its file (written to a temporary file)."""
    import os
    import tempfile

    from asrkd.decode.fstio import read_const_header

    fd, path = tempfile.mkstemp(suffix=".fst")
    os.close(fd)
    try:
        fst.write(path)
        return read_const_header(path)[2]
    finally:
        os.unlink(path)


def load_graph(directory: Path | str) -> Graph:
    """Load a complete graph directory (see module docstring)."""
    import kaldifst

    d = Path(directory)
    if not is_done(d) or not (d / "HCLG.fst").is_file():
        raise AsrkdError(f"{d} is not a complete decoding graph (build it with `asrkd mkgraph`)")
    info = read_json(d / "graph.json")
    from asrkd.decode.hmm_fst import Tids

    hclg = kaldifst.StdConstFst.read(str(d / "HCLG.fst"))
    with np.load(d / "tids.npz") as z:
        tids = Tids(z["unit"], z["state"], z["pdf"], z["loop"])
    prons = {}
    for line in (d / "lexicon.txt").read_text(encoding="utf-8").splitlines():
        w, *units = line.split()
        prons[w] = [int(u) for u in units]
    return Graph(d, hclg, read_symbols(d / "words.txt"), info, tids, prons)


def hclg_arrays(graph: Graph):  # noqa: ANN201
    """The graph's HCLG as :class:`asrkd.decode.fstio.FstArrays` (for the numba search)."""
    from asrkd.decode.fstio import read_const_fst

    a = read_const_fst(graph.directory / "HCLG.fst")
    if a.num_arcs and int(np.max(a.ilabel)) > len(graph.tids):
        raise AsrkdError(f"{graph.directory}/HCLG.fst has input labels above its {len(graph.tids)} tids")
    return a
