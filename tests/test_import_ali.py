"""import-ali: Kaldi text/ark alignments, TIMIT .PHN, the frame-count mismatch policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asrkd.align.import_ali import fit_frames, phn_to_classes
from asrkd.cli import main
from asrkd.data.datadir import write_table
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.lang.inventory import LangConfig, make_lang


def _data(tmp_path: Path, counts: dict[str, int]) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    write_table(d / "utt2num_frames", {u: str(n) for u, n in counts.items()})
    return d


def test_kaldi_text_and_ark(tmp_path: Path) -> None:
    import kaldiio

    d = _data(tmp_path, {"u1": 4, "u2": 3, "u3": 2})
    (tmp_path / "ali.txt").write_text("u1 0 0 5 5\nu2 1 2 3\nzz 1\n")
    assert main(["import-ali", str(d), str(tmp_path / "ali.txt"), "--format", "kaldi-text",
                 "--name", "kaldi", "--num-classes", "6"]) == 0
    store = FrameStore(d / "labels" / "kaldi")
    np.testing.assert_array_equal(store["u1"], [0, 0, 5, 5])
    assert store.dtype == np.int32 and store.shape == ()
    assert store.attrs["num_classes"] == 6 and store.attrs["source"].startswith("kaldi-text:")
    assert store.attrs["lang_fingerprint"].startswith("external:")
    assert (d / "labels" / "kaldi" / "failed").read_text() == "u3 not-in-source\n"
    kaldiio.save_ark(str(tmp_path / "ali.ark"), {"u1": np.array([1, 1, 2, 2], dtype=np.int32),
                                                 "u2": np.array([3, 3, 3], dtype=np.int32)})
    assert main(["import-ali", str(d), str(tmp_path / "ali.ark"), "--format", "kaldi-ark",
                 "--name", "ark", "--num-classes", "6"]) == 0
    np.testing.assert_array_equal(FrameStore(d / "labels" / "ark")["u2"], [3, 3, 3])
    # The same import again is complete (skipped); another source into the same name is refused.
    mtime = (d / "labels" / "ark" / ".done").stat().st_mtime_ns
    assert main(["import-ali", str(d), str(tmp_path / "ali.ark"), "--format", "kaldi-ark",
                 "--name", "ark", "--num-classes", "6"]) == 0
    assert (d / "labels" / "ark" / ".done").stat().st_mtime_ns == mtime
    assert main(["import-ali", str(d), str(tmp_path / "ali.txt"), "--format", "kaldi-text",
                 "--name", "ark", "--num-classes", "6"]) == 2
    assert main(["import-ali", str(d), str(tmp_path / "ali.txt"), "--format", "kaldi-text",
                 "--name", "ark", "--num-classes", "6", "--force"]) == 0
    np.testing.assert_array_equal(FrameStore(d / "labels" / "ark")["u2"], [1, 2, 3])
    # Ids beyond the inventory are refused.
    assert main(["import-ali", str(d), str(tmp_path / "ali.txt"), "--format", "kaldi-text",
                 "--name", "small", "--num-classes", "4"]) == 2


def test_mismatch_policy(tmp_path: Path) -> None:
    a = np.array([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(fit_frames("u", a, 3, "trim")[0], [1, 2, 3])
    np.testing.assert_array_equal(fit_frames("u", a, 7, "trim")[0], [1, 2, 3, 4, 5, 5, 5])
    with pytest.raises(AsrkdError, match="more than the 2 frames"):
        fit_frames("u", a, 8, "trim")
    with pytest.raises(AsrkdError, match="--mismatch trim"):
        fit_frames("u", a, 4, "error")
    d = _data(tmp_path, {"u1": 3})
    (tmp_path / "ali.txt").write_text("u1 0 0 1 1\n")
    args = ["import-ali", str(d), str(tmp_path / "ali.txt"), "--format", "kaldi-text", "--name", "x",
            "--num-classes", "2"]
    assert main(args) == 2
    assert main(args + ["--mismatch", "trim"]) == 0
    np.testing.assert_array_equal(FrameStore(d / "labels" / "x")["u1"], [0, 0, 1])


def test_timit_phn(tmp_path: Path) -> None:
    lex = tmp_path / "lex"
    lex.write_text("AB aa b\n")
    lang = make_lang(["AB"], tmp_path / "lang", LangConfig(unit_type="lexicon", lexicon=str(lex),
                                                            states_per_unit=2, sil_states=1))
    # h# until 40 ms, aa 40-120 ms, b 120-200 ms (16 kHz samples). Frame i's centre: 10 i + 12.5 ms.
    segs = [(0, 640, "h#"), (640, 1920, "aa"), (1920, 3200, "b")]
    got = phn_to_classes(segs, 18, lang, {})
    sil, aa, b = 0, int(lang.unit_offset[lang.unit_id("aa")]), int(lang.unit_offset[lang.unit_id("b")])
    # Centres 12.5, 22.5, 32.5 -> h#; 42.5 .. 112.5 (8 frames) -> aa split 4/4; 122.5 .. 182.5 -> b 4/3.
    want = [sil] * 3 + [aa] * 4 + [aa + 1] * 4 + [b] * 4 + [b + 1] * 3
    np.testing.assert_array_equal(got, want)
    d = _data(tmp_path, {"u1": 18})
    (tmp_path / "u1.PHN").write_text("".join(f"{s} {e} {p}\n" for s, e, p in segs))
    write_table(tmp_path / "phn.scp", {"u1": str(tmp_path / "u1.PHN")})
    assert main(["import-ali", str(d), str(tmp_path / "phn.scp"), "--format", "timit-phn", "--name", "timit",
                 "--lang", str(tmp_path / "lang")]) == 0
    store = FrameStore(d / "labels" / "timit")
    np.testing.assert_array_equal(store["u1"], want)
    assert store.attrs["lang_fingerprint"] == lang.fingerprint
