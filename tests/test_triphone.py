"""The tied-state triphone system end to end (``asrkd align`` with ``triphone.num_leaves > 0``) on
synthetic 'speech' with a planted right-context effect at word ends, the tied-state lang, and
realignment with a DNN (``asrkd align --dnn``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _ali_corpus import LETTERS, make_ali_set
from asrkd.align.ctm import read_ctm
from asrkd.cli import main
from asrkd.framestore import FrameStore
from asrkd.lang.inventory import load_lang
from asrkd.lang.tied import load_inventory

TRI = ["--set", "iterations=6", "--set", "mixup_iterations=3", "--set", "max_gauss=60",
       "--set", "triphone.num_leaves=40", "--set", "triphone.totgauss=120", "--set", "triphone.iterations=6",
       "--set", "triphone.mixup_iterations=4", "--set", "triphone.realign_iters=[2,4]",
       "--set", "triphone.tree.min_count=20", "--set", "triphone.tree.min_gain=20"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tri")
    rng = np.random.default_rng(0)
    means = rng.normal(0, 2.5, (1 + 3 * len(LETTERS), 40))
    means[0] = -4.0
    make_ali_set(root / "train", 80, 1, means, context_shift=2.0)
    make_ali_set(root / "test", 15, 2, means, context_shift=2.0)
    assert main(["make-units", str(root / "train"), str(root / "lang"), "--set", "unit_type=grapheme"]) == 0
    assert main(["align", str(root / "train"), str(root / "lang"), "--exp", str(root / "exp"), "--name", "tri",
                 *TRI]) == 0
    return root


def test_triphone_labels_and_tied_lang(corpus: Path) -> None:
    lang = load_lang(corpus / "lang")
    inv = load_inventory(corpus / "lang_tri")
    assert inv.tied and inv.lang.fingerprint == lang.fingerprint
    assert inv.fingerprint != lang.fingerprint
    assert lang.num_classes < inv.num_classes <= 40
    store = FrameStore(corpus / "train" / "labels" / "tri")
    assert store.attrs["num_classes"] == inv.num_classes and store.attrs["lang_fingerprint"] == inv.fingerprint
    assert len(store) == 80
    for u, lab in store.items():
        lab = np.asarray(lab)
        assert lab.min() >= 0 and lab.max() < inv.num_classes
    # The tree found the planted effect: some letter's last states have their own pdf before silence.
    tree = inv.tree
    a = lang.unit_id("A")
    assert len({int(tree.pdfs(np.array([lang.unit_id("C")]), np.array([a]), np.array([r]), np.array([2]))[0])
                for r in (0, lang.unit_id("B"))}) == 2
    # The model's files and the metrics.
    assert (corpus / "exp" / "mono.gmm.npz").is_file() and (corpus / "exp" / "final.gmm.npz").is_file()
    for f in ("tree.json", "questions.txt", "pdfs.txt", "lang.json"):
        assert (corpus / "lang_tri" / f).is_file()


def test_triphone_training_raises_the_likelihood(corpus: Path) -> None:
    m = json.loads((corpus / "exp" / "metrics.json").read_text())
    tri = m["triphone"]
    assert tri["num_pdfs"] == load_inventory(corpus / "lang_tri").num_classes
    assert len(tri["curve"]) == 6
    assert tri["curve"][-1]["avg_loglik"] > tri["curve"][0]["avg_loglik"]
    # The context-dependent system explains its final alignment better than the monophone one.
    assert tri["avg_loglik"] > m["avg_loglik"]


def test_align_test_set_with_the_triphone_model(corpus: Path) -> None:
    model = str(corpus / "exp" / "final.gmm.npz")
    # The triphone model belongs to the tied-state lang: with data/lang it is refused.
    assert main(["align", str(corpus / "test"), str(corpus / "lang"), "--name", "x", "--model", model]) == 2
    assert main(["align", str(corpus / "test"), str(corpus / "lang_tri"), "--name", "tri", "--model", model]) == 0
    labels = corpus / "test" / "labels" / "tri"
    assert FrameStore(labels).attrs["lang_fingerprint"] == load_inventory(corpus / "lang_tri").fingerprint
    assert main(["score-ali", str(labels), "--ref-word", str(corpus / "test" / "ref_word.ctm")]) == 0
    score = json.loads((labels / "score_ali.json").read_text())["word"]
    assert score["utterances"] == 15 and score["mismatched"] == 0
    assert score["within_20ms"] >= 90.0, score
    # The CTMs come from the path: the word CTM has the transcript's words in order.
    ctm = read_ctm(labels / "word.ctm")
    texts = dict(line.split(" ", 1) for line in (corpus / "test" / "text").read_text().splitlines())
    for u, segs in ctm.items():
        assert [w for w, _, _ in segs] == texts[u].split()


@pytest.fixture(scope="module")
def dnn(corpus: Path) -> str:
    """A tiny DNN trained on the triphone labels (dev: the test set aligned by the triphone model)."""
    out = corpus / "dnn"
    tiny = ["--set", "model.preset=tiny", "--set", "data.batch_size=64", "--set", "max_epochs=2",
            "--set", "data.prefetch=0", "--set", "num_threads=1"]
    assert main(["align", str(corpus / "test"), str(corpus / "lang_tri"), "--name", "tri",
                 "--model", str(corpus / "exp" / "final.gmm.npz")]) == 0
    assert main(["train", "--feats", str(corpus / "train"), "--labels", str(corpus / "train" / "labels" / "tri"),
                 "--dev-feats", str(corpus / "test"), "--dev-labels", str(corpus / "test" / "labels" / "tri"),
                 "--out", str(out), *tiny]) == 0
    return str(out / "final.pt")


def test_align_with_a_dnn(corpus: Path, dnn: str) -> None:
    """The DNN realigns the test set on the same tied states; on another inventory it is refused."""
    prior = str(corpus / "train" / "labels" / "tri")
    assert main(["align", str(corpus / "test"), str(corpus / "lang_tri"), "--name", "dnn", "--dnn", dnn,
                 "--prior-labels", prior]) == 0
    inv = load_inventory(corpus / "lang_tri")
    store = FrameStore(corpus / "test" / "labels" / "dnn")
    assert store.attrs["lang_fingerprint"] == inv.fingerprint and len(store) == 15
    assert all(0 <= np.asarray(v).min() and np.asarray(v).max() < inv.num_classes for _, v in store.items())
    report = json.loads((corpus / "test" / "labels" / "dnn" / "report.json").read_text())
    assert report["failed"] == 0 and report["models"] == [dnn]
    # An ensemble (the same model twice) goes through the same path.
    assert main(["align", str(corpus / "test"), str(corpus / "lang_tri"), "--name", "dnn2", "--dnn", dnn, dnn,
                 "--prior-labels", prior]) == 0
    np.testing.assert_array_equal(np.asarray(FrameStore(corpus / "test" / "labels" / "dnn2")["spk1-u000"]),
                                  np.asarray(store["spk1-u000"]))
    # The same DNN on the context-independent lang: another class inventory, refused.
    assert main(["align", str(corpus / "test"), str(corpus / "lang"), "--name", "bad", "--dnn", dnn,
                 "--prior-labels", prior]) == 2


def test_mixing_inventories_is_refused(corpus: Path, dnn: str, tmp_path: Path) -> None:
    """Labels, models and caches of the tied states are refused next to the monophone ones."""
    assert main(["align", str(corpus / "test"), str(corpus / "lang"), "--name", "mono",
                 "--model", str(corpus / "exp" / "mono.gmm.npz")]) == 0
    train = ["train", "--feats", str(corpus / "train"), "--labels", str(corpus / "train" / "labels" / "tri"),
             "--dev-feats", str(corpus / "test"), "--set", "model.preset=tiny", "--set", "max_epochs=1"]
    assert main([*train, "--dev-labels", str(corpus / "test" / "labels" / "mono"), "--out", str(tmp_path / "m")]) == 2
    cache = ["cache-targets", "--model", dnn, "--feats", str(corpus / "test"), "--T", "2", "--format", "dense"]
    assert main([*cache, "--lang", str(corpus / "lang"), "--out", str(tmp_path / "c1")]) == 2
    assert main([*cache, "--lang", str(corpus / "lang_tri"), "--out", str(tmp_path / "c2")]) == 0
    # Decoding: on the tied-state lang (pdfs summed per unit state for the unit-level search);
    # priors from labels of the other inventory are refused.
    ev = ["evaluate", "--model", dnn, "--feats", str(corpus / "test"), "--labels", str(corpus / "test" / "labels" / "tri"),
          "--train-data", str(corpus / "train")]
    assert main([*ev, "--lang", str(corpus / "lang"), "--prior-labels", str(corpus / "train" / "labels" / "tri"),
                 "--out", str(tmp_path / "e1")]) == 2
    assert main([*ev, "--lang", str(corpus / "lang_tri"), "--prior-labels", str(corpus / "train" / "labels" / "tri"),
                 "--out", str(tmp_path / "e2")]) == 0
    wer = json.loads((tmp_path / "e2" / "wer.json").read_text())
    assert wer["wer"]["ref"] > 0
