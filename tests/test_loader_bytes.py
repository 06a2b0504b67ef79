"""The training loader's memory bound in bytes (data.chunk_bytes): whatever the corpus size and
the soft targets' format, it never holds more than the bound, by its own byte count, and still
visits every frame exactly once per epoch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from asrkd.config import from_dict
from asrkd.data.labelled import open_labelled_frames
from asrkd.errors import AsrkdError
from asrkd.features.cmvn import load_cmvn
from asrkd.inference.model import load_model
from asrkd.softtargets.formats import TargetFormat
from asrkd.softtargets.source import OnlineTeacherSource, open_cached_source
from asrkd.train.config import DataConfig, TrainConfig
from asrkd.train.data import FrameLoader

from _kd_fixtures import FEAT_DIM, make_data_dir, make_teacher

T = 2.0
OWN_BYTES = 4 * FEAT_DIM + 4 + 4 * 8  # features, label, 4 int64 index entries


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir (about 800 frames, 30 classes) with dense and top-k caches of one teacher."""
    from asrkd.softtargets.run import cache_targets

    d = tmp_path_factory.mktemp("bytes")
    make_data_dir(d / "train", num_utts=30)
    make_teacher(d / "t.pt", load_cmvn(d / "train")["global"])
    for storage in ("dense", "topk"):
        cache_targets([str(d / "t.pt")], d / "train", d / storage, T=T, combine="mean", storage=storage, k=5,
                      precision="fp32")
    return d


def _loader(d: Path, soft: str | None, chunk_bytes: int, prefetch: int = 0) -> FrameLoader:
    feats, labels, utts = open_labelled_frames(d / "train" / "feats", d / "train" / "labels" / "ali")
    src = None
    if soft in ("dense", "topk"):
        src = open_cached_source(d / soft, T=T, feats=feats, labels=labels, utts=utts)
    elif soft == "online":
        src = OnlineTeacherSource([load_model(d / "t.pt")], feats, T)
    cmvn = load_cmvn(d / "train")["global"]
    return FrameLoader(feats, labels, utts, 2, 1, 16, cmvn, 10**9, seed=3, prefetch=prefetch, soft=src,
                       chunk_bytes=chunk_bytes)


@pytest.mark.parametrize(("soft", "soft_bytes"), [(None, 0), ("dense", 2 * 30), ("topk", 5 * (2 + 2) + 4),
                                                  ("online", 4 * FEAT_DIM + 16)])
@pytest.mark.parametrize("prefetch", [0, 2])
def test_never_more_than_chunk_bytes_and_every_frame_once(corpus: Path, soft: str | None, soft_bytes: int,
                                                          prefetch: int, caplog: pytest.LogCaptureFixture) -> None:
    bound = 12_000
    with caplog.at_level(logging.INFO, logger="asrkd.train.data"):
        loader = _loader(corpus, soft, bound, prefetch)
    assert loader.bytes_per_frame == OWN_BYTES + soft_bytes
    assert loader.chunk_frames == bound // loader.bytes_per_frame
    assert f"chunks of at most {loader.chunk_frames} frames ({loader.bytes_per_frame} bytes per frame" in caplog.text
    assert loader.total_frames * loader.bytes_per_frame >= 4 * bound  # the corpus is several bounds
    for epoch in (0, 1):
        assert len(loader.chunks(epoch)) >= 4
        seen = []
        for batch in loader.batches(epoch):
            # (prefetching, the producer may be between chunks, or done, while batches are queued)
            assert (prefetch > 0 or loader.held_bytes > 0) and loader.held_bytes <= bound
            if soft is not None:
                assert batch.soft is not None and batch.soft.probs.shape[0] == batch.size
            seen += zip(batch.utts.tolist(), batch.frames.tolist())
        assert len(seen) == len(set(seen)) == loader.total_frames  # every frame exactly once
        assert {u for u, _ in seen} == set(range(len(loader.utts)))
        # What was held was real: at the peak, about one full chunk.
        assert loader.chunk_frames * loader.bytes_per_frame * 0.7 <= loader.peak_bytes <= bound
    if prefetch == 0:
        assert loader.held_bytes == 0  # released at the end of the epoch


def test_a_corpus_under_the_bound_is_loaded_once_and_kept(corpus: Path) -> None:
    loader = _loader(corpus, "dense", 10**9)
    assert loader.in_memory
    for epoch in (0, 1):
        assert sum(b.size for b in loader.batches(epoch)) == loader.total_frames
    assert loader.held_bytes == loader.peak_bytes == loader.total_frames * loader.bytes_per_frame


def test_an_utterance_larger_than_the_bound_is_refused(corpus: Path) -> None:
    with pytest.raises(AsrkdError, match="does not fit a chunk"):
        _loader(corpus, "dense", 40 * (OWN_BYTES + 60))  # utterances run to 59 frames


def test_chunk_bytes_is_a_setting_and_old_chunk_frames_configs_load() -> None:
    assert DataConfig().chunk_bytes == 2 * 1024**3
    cfg = from_dict(TrainConfig, {"data": {"chunk_frames": 400}})
    assert cfg.data.chunk_frames == 400 and cfg.data.chunk_bytes == 2 * 1024**3
    assert from_dict(TrainConfig, {"data": {"chunk_bytes": 1 << 20}}).data.chunk_bytes == 1 << 20
    with pytest.raises(AsrkdError):
        from_dict(TrainConfig, {"data": {"chunk_bytes": 0}})
    assert TargetFormat("topk", 30, 5).bytes_per_frame() == 5 * (2 + 2) + 4
