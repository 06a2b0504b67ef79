"""make-units with a sentencepiece vocabulary too small for the transcripts' characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrkd.cli import main
from asrkd.errors import AsrkdError
from asrkd.lang.units import train_sentencepiece


def test_too_small_vocab_is_a_clear_error(tmp_path: Path) -> None:
    # Y E S N O + word-start marker + <unk> = 7 pieces at least.
    with pytest.raises(AsrkdError, match="at least 7"):
        train_sentencepiece(["YES NO", "NO NO YES"], tmp_path / "spm", vocab_size=4)
    assert train_sentencepiece(["YES NO", "NO NO YES"], tmp_path / "spm", vocab_size=7)


def test_make_units_reports_it_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "train"
    d.mkdir()
    (d / "text").write_text("u1 YES NO\nu2 NO YES\n")
    (d / "utt2spk").write_text("u1 s\nu2 s\n")
    assert main(["make-units", "--set", "vocab_size=4", str(d), str(tmp_path / "lang")]) == 2
    err = capsys.readouterr().err
    assert "vocab_size 4 is too small" in err and "Traceback" not in err
