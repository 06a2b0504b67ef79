"""The soft-target format chosen by the label inventory (``--format auto``): dense up to
``dense_max_classes`` classes, top-k above; the cache records the resolved format."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asrkd.errors import AsrkdError
from asrkd.features.cmvn import load_cmvn
from asrkd.fileio import read_json
from asrkd.softtargets.choice import DENSE_MAX_CLASSES, resolve_format

from _kd_fixtures import make_data_dir, make_teacher


@pytest.mark.parametrize(("num_classes", "want"), [(1, "dense"), (511, "dense"), (512, "dense"),
                                                    (513, "topk"), (14_000, "topk")])
def test_auto_by_class_count_with_the_default_threshold(num_classes: int, want: str) -> None:
    assert DENSE_MAX_CLASSES == 512
    assert resolve_format("auto", num_classes) == want
    # other-than-auto is always the other one; explicit formats are kept whatever the count.
    assert resolve_format("other-than-auto", num_classes) == ({"dense", "topk"} - {want}).pop()
    assert resolve_format("dense", num_classes) == "dense" and resolve_format("topk", num_classes) == "topk"


def test_auto_with_a_custom_threshold() -> None:
    assert resolve_format("auto", 100, dense_max_classes=99) == "topk"
    assert resolve_format("auto", 100, dense_max_classes=100) == "dense"
    assert resolve_format("auto", 2000, dense_max_classes=4096) == "dense"
    with pytest.raises(AsrkdError, match="dense_max_classes"):
        resolve_format("auto", 100, dense_max_classes=0)
    with pytest.raises(AsrkdError, match="unknown soft-target format"):
        resolve_format("sparse", 100)


@pytest.mark.parametrize(("dense_max", "want"), [(30, "dense"), (29, "topk")])
def test_the_cache_records_the_resolved_format(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               dense_max: int, want: str) -> None:
    from asrkd.cli import main

    make_data_dir(tmp_path / "train")  # 30 classes
    cmvn = load_cmvn(tmp_path / "train")["global"]
    make_teacher(tmp_path / "t.pt", cmvn)
    out = tmp_path / "cache"
    args = ["cache-targets", "--model", str(tmp_path / "t.pt"), "--feats", str(tmp_path / "train"), "--T", "2",
            "--k", "5", "--precision", "fp32", "--out", str(out)]  # --format: auto by default
    with caplog.at_level(logging.INFO, logger="asrkd.softtargets.run"):
        assert main([*args, "--dense-max-classes", str(dense_max)]) == 0
    for name in ("spec.json", "meta.json"):
        assert read_json(out / name)["storage"] == want, name
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == (["probs"] if want == "dense" else
                                                                   ["ids", "probs", "tail"])
    assert f"format auto: {want} for 30 classes (dense up to {dense_max})" in caplog.text
    # A rerun with auto resolves the same way: the complete cache is accepted and skipped.
    before = (out / "meta.json").stat().st_mtime_ns
    assert main([*args, "--dense-max-classes", str(dense_max)]) == 0
    assert (out / "meta.json").stat().st_mtime_ns == before
