"""data/lang: unit types, state inventory, files, fingerprint; the utterance graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asrkd.align.graph import build_graph
from asrkd.errors import AsrkdError
from asrkd.lang.inventory import LangConfig, load_lang, make_lang
from asrkd.lang.units import units_to_words

TEXTS = ["HELLO WORLD", "IT'S A TEST", "HELLO TEST"]


def test_grapheme_inventory_and_files(tmp_path: Path) -> None:
    lang = make_lang(TEXTS, tmp_path / "lang", LangConfig(unit_type="grapheme", states_per_unit=3, sil_states=2))
    chars = sorted(set("".join(t.replace(" ", "") for t in TEXTS)))
    assert lang.units == ["<sil>"] + chars
    assert lang.num_classes == 2 + 3 * len(chars)
    np.testing.assert_array_equal(lang.silence_classes, [0, 1])
    # states.txt and units.txt describe every class / unit, consistent with the arrays.
    states = (tmp_path / "lang" / "states.txt").read_text().splitlines()
    assert len(states) == lang.num_classes
    for line in states:
        c, unit, k = line.split()
        assert lang.units[lang.class_unit[int(c)]] == unit and lang.class_state[int(c)] == int(k)
    assert len((tmp_path / "lang" / "units.txt").read_text().splitlines()) == len(lang.units)
    meta = json.loads((tmp_path / "lang" / "lang.json").read_text())
    assert meta["num_classes"] == lang.num_classes and meta["fingerprint"] == lang.fingerprint
    # Each unit's states are consecutive class ids starting at unit_offset.
    h = lang.unit_id("H")
    assert [lang.class_name(lang.unit_offset[h] + k) for k in range(3)] == ["H/0", "H/1", "H/2"]
    wu = lang.transcript_units("IT'S A")
    assert [[lang.units[u] for u in w] for w in wu] == [["I", "T", "'", "S"], ["A"]]
    assert units_to_words([lang.units[u] for w in wu for u in w], [len(w) for w in wu]) == ["IT'S", "A"]


def test_fingerprint_tracks_content(tmp_path: Path) -> None:
    a = make_lang(TEXTS, tmp_path / "a", LangConfig(unit_type="grapheme"))
    b = make_lang(TEXTS, tmp_path / "b", LangConfig(unit_type="grapheme", self_loop_prob=0.6))
    c = make_lang(TEXTS, tmp_path / "c", LangConfig(unit_type="grapheme"))
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == c.fingerprint
    # A hand edit of lang.json is detected.
    p = tmp_path / "a" / "lang.json"
    meta = json.loads(p.read_text())
    meta["sil_prob"] = 0.9
    p.write_text(json.dumps(meta))
    with pytest.raises(AsrkdError, match="fingerprint"):
        load_lang(tmp_path / "a")


def test_complete_lang_is_kept_and_another_config_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = LangConfig(unit_type="grapheme")
    a = make_lang(TEXTS, tmp_path / "lang", cfg)
    done = tmp_path / "lang" / ".done"
    mtime = done.stat().st_mtime_ns
    with caplog.at_level("INFO"):
        again = make_lang(TEXTS, tmp_path / "lang", cfg)
    assert again.fingerprint == a.fingerprint and done.stat().st_mtime_ns == mtime
    assert "is complete; skipping (use --force to redo)" in caplog.text
    other = LangConfig(unit_type="grapheme", states_per_unit=2)
    with pytest.raises(AsrkdError, match="another config"):
        make_lang(TEXTS, tmp_path / "lang", other)
    assert make_lang(TEXTS, tmp_path / "lang", other, force=True).fingerprint != a.fingerprint


def test_lexicon_units(tmp_path: Path) -> None:
    lex = tmp_path / "cmu.dict"
    lex.write_text(";;; comment\nHELLO  HH AH0 L OW1\nHELLO(2)  HH EH0 L OW1\nWORLD  W ER1 L D\n")
    lang = make_lang(["HELLO WORLD"], tmp_path / "lang", LangConfig(unit_type="lexicon", lexicon=str(lex), g2p="none"))
    assert lang.units == ["<sil>", "AH", "D", "ER", "HH", "L", "OW", "W"]
    lang = load_lang(tmp_path / "lang")  # reload: the lexicon travels inside data/lang
    wu = lang.transcript_units("HELLO WORLD")
    assert [[lang.units[u] for u in w] for w in wu] == [["HH", "AH", "L", "OW"], ["W", "ER", "L", "D"]]
    with pytest.raises(AsrkdError, match="not in the lexicon"):
        lang.transcript_units("GOODBYE")


def test_sentencepiece_4000_pieces(tmp_path: Path) -> None:
    """Senone-scale inventories: 4000 pieces x 3 states (+ silence)."""
    rng = np.random.default_rng(0)
    syl = [a + b for a in "BCDFGHKLMNPRSTVZ" for b in ("A", "E", "I", "O", "U", "AI", "OU")]
    picks = rng.integers(0, len(syl), (12000, 3))
    lens = rng.integers(1, 4, 12000)
    words = ["".join(syl[i] for i in row[:n]) for row, n in zip(picks, lens)]
    texts = [" ".join(words[i] for i in row) for row in rng.integers(0, len(words), (12000, 12))]
    lang = make_lang(texts, tmp_path / "lang", LangConfig(vocab_size=4000))
    assert len(lang.units) == 4001
    assert lang.num_classes == 4000 * 3 + 3
    lang = load_lang(tmp_path / "lang")
    wu = lang.transcript_units(texts[0])
    assert units_to_words([lang.units[u] for w in wu for u in w]) == texts[0].split()


def test_graph_optional_silence(tmp_path: Path) -> None:
    lang = make_lang(["AB C"], tmp_path / "lang", LangConfig(unit_type="grapheme", states_per_unit=2, sil_states=1))
    g = build_graph(lang, lang.transcript_units("AB C"))
    # sil A A B B sil C C sil
    assert [lang.class_name(c) for c in g.node_class] == [
        "<sil>/0", "A/0", "A/1", "B/0", "B/1", "<sil>/0", "C/0", "C/1", "<sil>/0"]
    assert list(g.node_word) == [-1, 0, 0, 0, 0, -1, 1, 1, -1]
    assert g.min_frames() == 6  # every silence skipped
    assert list(g.extra_src[g.extra_start[6]:g.extra_start[7]]) == [4] and g.extra_src.size == 1
    assert np.isfinite(g.start_lp[[0, 1]]).all()
    assert np.isfinite(g.final_lp[[7, 8]]).all() and np.isinf(g.final_lp[:7]).all()
    # The optional silence sums to one with its skip: q + (1 - q).
    assert np.exp(g.enter_lp[5] - g.enter_lp[1]) + np.exp(g.extra_lp[0] - g.enter_lp[1]) == pytest.approx(1.0)
