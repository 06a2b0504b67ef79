"""augment-feats: copies keep frame counts and labels, noise and mask as specified, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _train_data import make_set
from asrkd.features.augment import augment_data_dir
from asrkd.features.cmvn import load_cmvn, mean_std
from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore, write_store


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    return make_set(tmp_path / "train", 6)


def test_copies_keep_labels_and_frames_and_add_scaled_noise(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug"
    res = augment_data_dir(src, src / "labels/ali", out, copies=2, seed=3, noise_sd=0.4, max_mask_bins=8)
    feats, labels = FrameStore(src / "feats"), FrameStore(src / "labels/ali")
    a_feats, a_labels = FrameStore(out / "feats"), FrameStore(out / "labels/ali")
    assert res["utts"] == 18 == len(a_feats.keys()) == len(a_labels.keys())
    assert res["frames"] == 3 * sum(feats.num_frames(u) for u in feats.keys())
    assert read_table(out / "utt2num_frames")[f"{feats.keys()[0]}-aug2"] == str(feats.num_frames(feats.keys()[0]))
    assert load_cmvn(out) == load_cmvn(src)  # models normalise as on the source set
    mean, std = mean_std(load_cmvn(src)["global"])
    resid = []
    for u in feats.keys():
        x = np.asarray(feats[u])
        assert np.array_equal(a_feats[u], x) and np.array_equal(a_labels[u], labels[u])  # source kept as is
        for k in (1, 2):
            y = np.asarray(a_feats[f"{u}-aug{k}"])
            assert np.array_equal(a_labels[f"{u}-aug{k}"], labels[u])
            masked = np.flatnonzero(np.all(np.isclose(y, mean.astype(np.float32)), axis=0))
            assert len(masked) <= 8 and (len(masked) == 0 or np.all(np.diff(masked) == 1))
            keep = np.setdiff1d(np.arange(x.shape[1]), masked)
            resid.append(((y - x)[:, keep] / std[keep]).ravel())
    r = np.concatenate(resid)
    assert abs(r.mean()) < 0.02 and r.std() == pytest.approx(0.4, rel=0.05)


def test_seeded_and_independent_of_the_utterance_set(src: Path, tmp_path: Path) -> None:
    a = augment_data_dir(src, src / "labels/ali", tmp_path / "a", copies=1, seed=1)
    assert augment_data_dir(src, src / "labels/ali", tmp_path / "a", copies=1, seed=1) == a  # skipped: same counts
    b = augment_data_dir(src, src / "labels/ali", tmp_path / "b", copies=1, seed=1)
    c = augment_data_dir(src, src / "labels/ali", tmp_path / "c", copies=1, seed=2)
    assert a == b
    fa, fb, fc = (FrameStore(tmp_path / n / "feats") for n in "abc")
    u = fa.keys()[0]
    assert np.array_equal(fa[f"{u}-aug1"], fb[f"{u}-aug1"])
    assert not np.array_equal(fa[f"{u}-aug1"], fc[f"{u}-aug1"])
    # a completed run is skipped; --force redoes it (same bytes)
    before = np.asarray(fa[f"{u}-aug1"]).copy()
    augment_data_dir(src, src / "labels/ali", tmp_path / "a", copies=1, seed=1, force=True)
    assert np.array_equal(FrameStore(tmp_path / "a/feats")[f"{u}-aug1"], before)


def test_bad_input_is_refused(src: Path, tmp_path: Path) -> None:
    with pytest.raises(AsrkdError, match="copies"):
        augment_data_dir(src, src / "labels/ali", tmp_path / "x", copies=0)
    labels = FrameStore(src / "labels/ali")
    u = labels.keys()[0]
    short = [(v, np.asarray(labels[v])[:-1] if v == u else np.asarray(labels[v])) for v in labels.keys()]
    write_store(tmp_path / "short", short, "int32", (), labels.attrs)
    with pytest.raises(AsrkdError, match="feature frames but"):
        augment_data_dir(src, tmp_path / "short", tmp_path / "y", copies=1)
    assert not (tmp_path / "y").exists()
    with pytest.raises(AsrkdError, match="overwrite the source"):
        augment_data_dir(src, src / "labels/ali", src, copies=1, force=True)
    (tmp_path / "z").mkdir()  # not an augment-feats output: left alone without --force
    with pytest.raises(AsrkdError, match="--force overwrites"):
        augment_data_dir(src, src / "labels/ali", tmp_path / "z", copies=1)
    assert (src / "feats").is_dir()
    # a killed run (its own augment.json, no .done) is redone without --force
    done = augment_data_dir(src, src / "labels/ali", tmp_path / "k", copies=1)
    (tmp_path / "k" / ".done").unlink()
    (tmp_path / "k" / "utt2num_frames").unlink()
    assert augment_data_dir(src, src / "labels/ali", tmp_path / "k", copies=1) == done
    # a complete output made with other settings is not taken for this one
    for other in ({"copies": 2}, {"copies": 1, "seed": 1}, {"copies": 1, "noise_sd": 0.2}):
        with pytest.raises(AsrkdError, match="was made with"):
            augment_data_dir(src, src / "labels/ali", tmp_path / "k", **other)
    assert augment_data_dir(src, src / "labels/ali", tmp_path / "k", copies=2, force=True)["utts"] == 3 * len(labels.keys())
