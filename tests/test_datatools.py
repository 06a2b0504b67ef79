"""asrkd subset-data / combine-data and the library behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrkd.data import datatools
from asrkd.cli import main
from asrkd.data.datadir import DataDir, Segment, read_data_dir, read_table, write_data_dir
from asrkd.errors import AsrkdError
from asrkd.data.validate import validate_data_dir


def make_dir(path: Path, speakers: int = 10, per_speaker: int = 20, prefix: str = "s") -> DataDir:
    """A tables-only data dir (no audio needed) with utt2dur and a TIMIT-like utt2phn."""
    d = DataDir(wav={}, text={}, utt2spk={})
    d.extra = {"utt2dur": {}, "utt2phn": {}}
    for s in range(speakers):
        spk = f"{prefix}{s:02d}"
        for i in range(per_speaker):
            utt = f"{spk}-{i:03d}"
            d.wav[utt], d.text[utt], d.utt2spk[utt] = f"/audio/{utt}.wav", f"WORDS OF {utt}", spk
            d.extra["utt2dur"][utt] = f"{1 + i / 10:.2f}"
            d.extra["utt2phn"][utt] = f"/labels/{utt}.PHN"
    write_data_dir(path, d)
    return d


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def assert_consistent(path: Path) -> DataDir:
    report = validate_data_dir(path, check_audio=False)
    assert report.ok, [str(p) for p in report.problems]
    return read_data_dir(path)


def test_fraction_is_exact_deterministic_and_nested(tmp_path: Path) -> None:
    make_dir(tmp_path / "src")  # 200 utterances
    assert cli("subset-data", tmp_path / "src", tmp_path / "a", "--fraction", 0.03) == 0
    assert cli("subset-data", tmp_path / "src", tmp_path / "b", "--fraction", 0.03) == 0
    assert cli("subset-data", tmp_path / "src", tmp_path / "c", "--fraction", 0.03, "--seed", 7) == 0
    assert cli("subset-data", tmp_path / "src", tmp_path / "big", "--fraction", 0.10) == 0
    a, b, c, big = (assert_consistent(tmp_path / n) for n in ("a", "b", "c", "big"))
    assert len(a.utts) == 6 and len(big.utts) == 20
    assert a.utts == b.utts and a.utts != c.utts
    assert set(a.utts) <= set(big.utts)
    assert len(set(a.utt2spk.values())) > 1  # a random choice, not the first speaker's utterances
    # per-utterance tables follow the subset
    assert set(a.extra["utt2dur"]) == set(a.extra["utt2phn"]) == set(a.utts)


def test_first_speakers_num_speakers_and_list(tmp_path: Path) -> None:
    src = make_dir(tmp_path / "src")
    assert cli("subset-data", tmp_path / "src", tmp_path / "first", "--first", 25) == 0
    assert assert_consistent(tmp_path / "first").utts == src.utts[:25]
    assert cli("subset-data", tmp_path / "src", tmp_path / "spk", "--speakers", "s03,s07") == 0
    spk = assert_consistent(tmp_path / "spk")
    assert set(spk.utt2spk.values()) == {"s03", "s07"} and len(spk.utts) == 40
    assert set(read_table(tmp_path / "spk/spk2utt")) == {"s03", "s07"}
    assert cli("subset-data", tmp_path / "src", tmp_path / "n", "--num-speakers", 3) == 0
    n = assert_consistent(tmp_path / "n")
    assert len(set(n.utt2spk.values())) == 3 and len(n.utts) == 60
    (tmp_path / "list").write_text("s01-005\ns09-019 extra fields are ignored\nnot-an-utt\n")
    assert cli("subset-data", tmp_path / "src", tmp_path / "l", "--utt-list", tmp_path / "list") == 0
    assert assert_consistent(tmp_path / "l").utts == ["s01-005", "s09-019"]


def test_subset_refusals(tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    make_dir(tmp_path / "src")
    assert cli("subset-data", tmp_path / "src", tmp_path / "x", "--speakers", "nobody") == 2
    assert "unknown speaker(s): nobody" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert cli("subset-data", tmp_path / "src", tmp_path / "src", "--first", 3) == 2
    assert "also an input" in capsys.readouterr().err
    assert cli("subset-data", tmp_path / "src", tmp_path / "x", "--fraction", 1.5) == 2
    # an existing output is kept unless --force, which replaces it whole
    assert cli("subset-data", tmp_path / "src", tmp_path / "x", "--first", 3) == 0
    (tmp_path / "x/utt2num_frames").write_text("stale 1\n")
    assert cli("subset-data", tmp_path / "src", tmp_path / "x", "--first", 4) == 2
    assert "exists" in capsys.readouterr().err
    assert cli("subset-data", tmp_path / "src", tmp_path / "x", "--first", 4, "--force") == 0
    assert len(assert_consistent(tmp_path / "x").utts) == 4 and not (tmp_path / "x/utt2num_frames").exists()
    # the same selection again: complete, kept as it is (with what later steps added), logged
    (tmp_path / "x/utt2num_frames").write_text("kept 1\n")
    with caplog.at_level("INFO"):
        assert cli("subset-data", tmp_path / "src", tmp_path / "x", "--first", 4) == 0
    assert (tmp_path / "x/utt2num_frames").read_text() == "kept 1\n"
    assert "is complete; skipping (use --force to redo)" in caplog.text


def test_combine(tmp_path: Path) -> None:
    a = make_dir(tmp_path / "a", speakers=2, prefix="a")
    b = make_dir(tmp_path / "b", speakers=3, prefix="b")
    assert cli("subset-data", tmp_path / "a", tmp_path / "a_part", "--first", 5) == 0
    # a_part repeats 5 utterances of a with identical content: kept once
    assert cli("combine-data", tmp_path / "ab", tmp_path / "a", tmp_path / "b", tmp_path / "a_part") == 0
    ab = assert_consistent(tmp_path / "ab")
    assert ab.utts == sorted(a.utts + b.utts)
    assert ab.text == {**a.text, **b.text} and ab.extra["utt2dur"] == {**a.extra["utt2dur"], **b.extra["utt2dur"]}


def test_combine_refuses_conflicting_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_dir(tmp_path / "a", speakers=2)
    d = make_dir(tmp_path / "b", speakers=2)
    d.text["s01-004"] = "A DIFFERENT TRANSCRIPT"
    write_data_dir(tmp_path / "b", d)
    assert cli("combine-data", tmp_path / "ab", tmp_path / "a", tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "'s01-004'" in err and "different content" in err
    assert not (tmp_path / "ab").exists()


def test_combine_mixed_segments_and_partial_tables(tmp_path: Path) -> None:
    make_dir(tmp_path / "a", speakers=1, per_speaker=2, prefix="a")
    seg = DataDir(wav={"rec1": "/audio/rec1.wav"}, text={"b00-1": "ONE", "b00-2": "TWO"},
                  utt2spk={"b00-1": "b00", "b00-2": "b00"},
                  segments={"b00-1": Segment("rec1", 0.0, 1.5), "b00-2": Segment("rec1", 1.5, 3.0)})
    write_data_dir(tmp_path / "b", seg)
    out = datatools.combine_data(tmp_path / "ab", [tmp_path / "a", tmp_path / "b"])
    assert out.segments is not None and out.segments["a00-001"] == Segment("a00-001", 0.0, -1.0)
    assert out.extra == {}  # utt2dur/utt2phn: only one source has them, a partial table would be wrong
    back = read_data_dir(tmp_path / "ab")
    assert back.segments == out.segments and set(back.wav) == {"a00-000", "a00-001", "rec1"}
    assert_consistent(tmp_path / "ab")


def test_selection_functions_reject_nonsense(tmp_path: Path) -> None:
    d = make_dir(tmp_path / "src", speakers=2, per_speaker=3)
    with pytest.raises(AsrkdError):
        datatools.select_first(d, 0)
    with pytest.raises(AsrkdError):
        datatools.select_num_speakers(d, 3, seed=0)
    assert datatools.select_fraction(d, 0.01, seed=0) and len(datatools.select_fraction(d, 1.0, seed=0)) == 6


def test_num_frames_round_trip_and_bad_counts(tmp_path: Path) -> None:
    """utt2num_frames: the one reader returns ints; a missing file or a bad count names the file."""
    from asrkd.data.datadir import read_num_frames, write_num_frames

    write_num_frames(tmp_path, {"b": 7, "a": 0})
    assert (tmp_path / "utt2num_frames").read_text() == "a 0\nb 7\n"
    assert read_num_frames(tmp_path) == {"a": 0, "b": 7}
    with pytest.raises(AsrkdError, match="missing file"):
        read_num_frames(tmp_path / "nothing")
    for bad in ("-3", "2.5", "x"):
        (tmp_path / "utt2num_frames").write_text(f"a {bad}\n")
        with pytest.raises(AsrkdError, match="utt2num_frames: a: frame count"):
            read_num_frames(tmp_path)
