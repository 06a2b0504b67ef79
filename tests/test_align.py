"""Flat-start alignment end to end on synthetic 'speech' with known segmentations.

Every HMM state of every grapheme gets its own mean pattern over 40 'filterbank' bins, silence
is low-energy noise; utterances are random words with random durations and random pauses. The
aligner must find the word boundaries from transcripts alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _ali_corpus import LETTERS, make_ali_set as _make_set
from asrkd.align.ctm import read_ctm
from asrkd.align.labels import read_failed
from asrkd.cli import main
from asrkd.framestore import FrameStore
from asrkd.framing import boundary_time
from asrkd.lang.inventory import load_lang


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ali")
    rng = np.random.default_rng(0)
    means = rng.normal(0, 2.5, (1 + 3 * len(LETTERS), 40))
    means[0] = -4.0  # silence: low energy in every bin
    _make_set(root / "train", 60, 1, means, short=True)
    _make_set(root / "test", 15, 2, means)
    assert main(["make-units", str(root / "train"), str(root / "lang"), "--set", "unit_type=grapheme"]) == 0
    return root


TRAIN_ALIGNER = ["--set", "iterations=8", "--set", "mixup_iterations=4", "--set", "max_gauss=60"]


def test_unalignable_utterances_refuse_the_set_by_default(corpus: Path, tmp_path: Path, capsys) -> None:
    """The 5-frame utterance cannot be aligned: without --skip-unalignable the set is refused
    (nothing written); with it, more than --max-skip-fraction lost is refused too."""
    rc = main(["align", str(corpus / "train"), str(corpus / "lang"), "--exp", str(tmp_path / "exp"),
               "--name", "refused", *TRAIN_ALIGNER])
    assert rc == 2
    err = capsys.readouterr().err
    assert "1 utterance(s) cannot be aligned" in err and "spk1-u000" in err and "--skip-unalignable" in err
    assert not (corpus / "train" / "labels" / "refused").exists()
    rc = main(["align", str(corpus / "train"), str(corpus / "lang"), "--exp", str(tmp_path / "exp"),
               "--name", "refused", "--skip-unalignable", "--max-skip-fraction", "0.01", *TRAIN_ALIGNER])
    assert rc == 2 and "more than --max-skip-fraction 0.01" in capsys.readouterr().err


def test_empty_transcript_is_not_aligned_as_silence(corpus: Path, tmp_path: Path, caplog) -> None:
    d = tmp_path / "test"
    import shutil

    shutil.copytree(corpus / "test", d)
    text = (d / "text").read_text().splitlines()
    empty_utt = text[2].split()[0]
    text[2] = empty_utt
    (d / "text").write_text("\n".join(text) + "\n")
    if not (corpus / "exp" / "final.gmm.npz").is_file():
        assert main(["align", str(corpus / "train"), str(corpus / "lang"), "--exp", str(corpus / "exp"),
                     "--skip-unalignable", *TRAIN_ALIGNER]) == 0
    model = ["--model", str(corpus / "exp" / "final.gmm.npz")]
    assert main(["align", str(d), str(corpus / "lang"), *model]) == 2
    with caplog.at_level("WARNING"):
        assert main(["align", str(d), str(corpus / "lang"), "--skip-unalignable", "--max-skip-fraction", "0.1",
                     *model]) == 0
    assert any(r.levelname == "WARNING" and empty_utt in r.getMessage() and "empty-transcript" in r.getMessage()
               for r in caplog.records)
    assert any(r.levelname == "WARNING" and "1 of 15 utterance(s)" in r.getMessage() for r in caplog.records)
    labels = d / "labels" / "flatstart"
    assert empty_utt not in FrameStore(labels) and read_failed(labels)[empty_utt].startswith("empty-transcript")
    import json

    assert json.loads((labels / "report.json").read_text())["failed"] == 1


def test_flat_start_recovers_word_boundaries(corpus: Path) -> None:
    rc = main(["align", str(corpus / "train"), str(corpus / "lang"), "--exp", str(corpus / "exp"),
               "--skip-unalignable", *TRAIN_ALIGNER])
    assert rc == 0
    store = FrameStore(corpus / "train" / "labels" / "flatstart")
    lang = load_lang(corpus / "lang")
    assert store.attrs["num_classes"] == lang.num_classes
    assert store.attrs["lang_fingerprint"] == lang.fingerprint
    assert store.attrs["feats_fingerprint"] == "synthetic-fbank"
    # The 5-frame utterance is listed as failed, not stored; all others are, with full length.
    failed = read_failed(corpus / "train" / "labels" / "flatstart")
    assert list(failed) == ["spk1-u000"] and failed["spk1-u000"].startswith("too-short")
    assert len(store) == 59
    feats = FrameStore(corpus / "train" / "feats")
    for u in store.keys():
        assert store.num_frames(u) == feats.num_frames(u)
    # Dev/test alignment with the trained model, then scoring.
    assert main(["align", str(corpus / "test"), str(corpus / "lang"),
                 "--model", str(corpus / "exp" / "final.gmm.npz")]) == 0
    labels = corpus / "test" / "labels" / "flatstart"
    assert main(["score-ali", str(labels), "--ref-word", str(corpus / "test" / "ref_word.ctm")]) == 0
    import json

    score = json.loads((labels / "score_ali.json").read_text())["word"]
    assert score["utterances"] == 15 and score["mismatched"] == 0
    assert score["within_20ms"] >= 90.0, score
    metrics = json.loads((corpus / "exp" / "metrics.json").read_text())
    curve = metrics["curve"]
    assert len(curve) == 8
    # Training improves the likelihood of the alignment and the labels settle.
    assert curve[-1]["avg_loglik"] > curve[0]["avg_loglik"]
    assert curve[-1]["changed"] < 0.05 < curve[0]["changed"]


def test_model_for_another_lang_is_refused(corpus: Path, tmp_path: Path) -> None:
    if not (corpus / "exp" / "final.gmm.npz").is_file():
        pytest.skip("needs the trained model of the previous test")
    main(["make-units", str(corpus / "train"), str(tmp_path / "lang2"), "--set", "unit_type=grapheme",
          "--set", "sil_prob=0.3"])
    rc = main(["align", str(corpus / "test"), str(tmp_path / "lang2"), "--name", "other",
               "--model", str(corpus / "exp" / "final.gmm.npz")])
    assert rc == 2


def test_quieter_background_is_silence(tmp_path: Path) -> None:
    """Background far quieter than the corpus's usual silence is labelled silence, in training
    and when aligning another set with the model (the noise floor travels with the model)."""
    rng = np.random.default_rng(0)
    means = rng.normal(0, 2.5, (1 + 3 * len(LETTERS), 40))
    means[0] = -4.0
    means[1:] = np.logaddexp(means[1:], means[0])  # speech adds power to the background
    _make_set(tmp_path / "train", 30, 3, means, quiet=(0,))
    _make_set(tmp_path / "test", 6, 4, means, quiet=(0, 1, 2))
    assert main(["make-units", str(tmp_path / "train"), str(tmp_path / "lang"), "--set", "unit_type=grapheme"]) == 0
    assert main(["align", str(tmp_path / "train"), str(tmp_path / "lang"), "--exp", str(tmp_path / "exp"),
                 "--set", "iterations=6", "--set", "mixup_iterations=3", "--set", "max_gauss=60"]) == 0
    assert main(["align", str(tmp_path / "test"), str(tmp_path / "lang"),
                 "--model", str(tmp_path / "exp" / "final.gmm.npz")]) == 0
    lang = load_lang(tmp_path / "lang")
    for s, utts in (("train", ["spk1-u000"]), ("test", ["spk1-u000", "spk1-u001", "spk1-u002"])):
        labels = FrameStore(tmp_path / s / "labels" / "flatstart")
        ref = read_ctm(tmp_path / s / "ref_word.ctm")
        for u in utts:
            first_word_frame = int(round((ref[u][0][1] - float(boundary_time(0))) / 0.01))
            units = lang.class_unit[np.asarray(labels[u])]
            lead = units[: first_word_frame - 2]
            assert (lead == lang.silence_unit).all(), (s, u, units[:first_word_frame])
            assert units[first_word_frame + 2] != lang.silence_unit


def test_noise_floor_lifts_only_quiet_frames() -> None:
    from asrkd.align.frontend import FrontendConfig, transform

    cfg = FrontendConfig(num_ceps=0, delta_order=0, cmvn="none")
    floor = np.zeros(4, dtype=np.float32)
    x = np.array([[-20.0, -20.0, -20.0, -20.0], [10.0, 10.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    y = transform(x, None, cfg, floor)
    np.testing.assert_allclose(y[0], 0.0, atol=1e-6)  # far below: onto the floor
    np.testing.assert_allclose(y[1], 10.0, atol=1e-4)  # far above: unchanged
    np.testing.assert_allclose(y[2], np.log(2.0), atol=1e-6)  # at the floor: powers add
    np.testing.assert_array_equal(transform(x, None, cfg, None), x)
