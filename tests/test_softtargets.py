"""Soft-target combination, storage formats, the cache reader/writer, verification, and the
training-side checks (asrkd.softtargets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore
from asrkd.inference.ensemble import combine_logits
from asrkd.inference.model import load_model
from asrkd.train.loss import kd_loss
from asrkd.softtargets.cache import CacheSpec, plan_shards, write_cache
from asrkd.softtargets.formats import TargetFormat, decode_dense, encode
from asrkd.softtargets.source import (
    CachedSource, OnlineSource, OnlineTeacherSource, check_compatible, open_cached_source,
)
from asrkd.softtargets.verify import verify_cache

from _kd_fixtures import FEATS_FP, LANG_FP, make_data_dir, make_teacher


def test_combine_rules() -> None:
    g = torch.Generator().manual_seed(0)
    z = [torch.randn(6, 9, generator=g) * 3 for _ in range(3)]
    T = 2.0
    mean = combine_logits(z, T, "mean")
    torch.testing.assert_close(mean, sum(torch.softmax(x / T, -1) for x in z) / 3)
    geo = combine_logits(z, T, "geometric")
    unnorm = torch.exp(sum(torch.log_softmax(x / T, -1) for x in z) / 3)
    torch.testing.assert_close(geo, unnorm / unnorm.sum(-1, keepdim=True))
    for p in (mean, geo):
        torch.testing.assert_close(p.sum(-1), torch.ones(6))
    assert not torch.allclose(mean, geo)
    # One teacher: both rules are its tempered softmax.
    torch.testing.assert_close(combine_logits(z[:1], T, "geometric"), torch.softmax(z[0] / T, -1))
    with pytest.raises(AsrkdError):
        combine_logits(z, T, "median")
    with pytest.raises(AsrkdError):
        combine_logits([z[0], z[1][:, :5]], T)


@pytest.mark.parametrize("C,k,id_bytes", [(30, 5, 2), (2000, 20, 2), (40000, 10, 4)])
def test_topk_encoding(C: int, k: int, id_bytes: int) -> None:
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(7, C, generator=g) * 4, -1)
    fmt = TargetFormat("topk", C, k)
    a = encode(p, fmt)
    assert a["ids"].dtype.itemsize == id_bytes and a["probs"].dtype == np.float16 and a["tail"].dtype == np.float32
    assert fmt.bytes_per_frame() == k * (id_bytes + 2) + 4
    ref = torch.topk(p, k, -1)
    assert np.array_equal(np.sort(a["ids"].astype(np.int64), 1), np.sort(ref.indices.numpy(), 1))
    np.testing.assert_allclose(a["probs"].astype(np.float32), ref.values.numpy(), rtol=1e-3)
    rest = p.double().sum(-1) - ref.values.double().sum(-1)  # the other classes' exact mass
    np.testing.assert_allclose(a["tail"], rest.numpy(), rtol=1e-6, atol=1e-9)
    assert (np.diff(a["probs"].astype(np.float32), axis=1) <= 0).all()  # descending
    dense = decode_dense(a, fmt)
    np.testing.assert_allclose(dense.sum(1), 1.0, atol=2e-3)


def test_dense_encoding_and_ties_are_deterministic() -> None:
    p = torch.full((3, 10), 0.1)
    fmt = TargetFormat("topk", 10, 4)
    a = encode(p, fmt)
    assert (a["ids"] == np.arange(4)).all()  # ties broken by the lower class id
    d = encode(p, TargetFormat("dense", 10))
    assert d["probs"].dtype == np.float16 and d["probs"].shape == (3, 10)
    with pytest.raises(AsrkdError):
        TargetFormat("topk", 10, 11)


def test_plan_shards_is_fixed_by_the_utterance_list() -> None:
    counts = {f"u{i:02d}": 10 + i for i in range(20)}
    plan = plan_shards(counts, 50)
    assert [u for s in plan for u in s] == sorted(counts)
    assert all(sum(counts[u] for u in s) >= 50 for s in plan[:-1])
    assert plan == plan_shards(dict(reversed(list(counts.items()))), 50)


def _linear_teachers(F: int, C: int, n: int) -> list:
    Ws = [torch.randn(F, C, generator=torch.Generator().manual_seed(s)) * 2 for s in range(n)]
    return [(lambda W: (lambda x: x @ W))(W) for W in Ws]


def _spec(C: int, storage: str = "topk", T: float = 2.0, **kw) -> CacheSpec:
    return CacheSpec(T=T, combine="mean", format=storage, k=5, num_classes=C, lang_fingerprint=LANG_FP,
                     feature_fingerprint=FEATS_FP, teachers=({"path": "t0", "sha256": "0" * 64},),
                     shard_frames=200, **kw)


@pytest.mark.parametrize("storage", ["topk", "dense"])
def test_cache_roundtrip(tmp_path: Path, storage: str) -> None:
    counts = make_data_dir(tmp_path / "train")
    feats = FrameStore(tmp_path / "train" / "feats")
    teachers = _linear_teachers(8, 30, 3)
    cache = write_cache(tmp_path / "c", _spec(30, storage), teachers, lambda u: np.array(feats[u]), counts)
    assert cache.frame_counts() == counts and cache.meta["num_frames"] == sum(counts.values())
    assert len(cache.meta["shards"]) > 1
    src = CachedSource(cache)
    for u in list(counts)[:4]:
        p = combine_logits([t(torch.from_numpy(np.array(feats[u]))) for t in teachers], 2.0)
        got = src.utterance(u)
        if storage == "dense":
            torch.testing.assert_close(got.probs.float(), p, atol=1e-3, rtol=1e-3)
        else:
            ref = torch.topk(p, 5, -1)
            torch.testing.assert_close(got.probs.float(), ref.values, atol=1e-3, rtol=1e-3)
            torch.testing.assert_close(got.tail, 1 - ref.values.sum(-1), atol=1e-5, rtol=1e-4)
    assert verify_cache(tmp_path / "c", tmp_path / "train", labels_dir=tmp_path / "train/labels/ali") == []


def test_teacher_frame_count_mismatch_is_refused(tmp_path: Path) -> None:
    counts = make_data_dir(tmp_path / "train")
    feats = FrameStore(tmp_path / "train" / "feats")
    W = torch.randn(8, 30)
    with pytest.raises(AsrkdError, match="utt2num_frames"):
        write_cache(tmp_path / "c", _spec(30), [lambda x: (x @ W)[:-1]], lambda u: np.array(feats[u]), counts)


def test_rerun_with_other_parameters_is_refused(tmp_path: Path) -> None:
    counts = make_data_dir(tmp_path / "train")
    feats = FrameStore(tmp_path / "train" / "feats")
    t = _linear_teachers(8, 30, 1)
    write_cache(tmp_path / "c", _spec(30), t, lambda u: np.array(feats[u]), counts)
    with pytest.raises(AsrkdError, match="other parameters"):
        write_cache(tmp_path / "c", _spec(30, T=5.0), t, lambda u: np.array(feats[u]), counts)
    c = write_cache(tmp_path / "c", _spec(30, T=5.0), t, lambda u: np.array(feats[u]), counts, force=True)
    assert c.T == 5.0


def test_verify_detects_every_corrupted_file(tmp_path: Path) -> None:
    counts = make_data_dir(tmp_path / "train")
    feats = FrameStore(tmp_path / "train" / "feats")
    d = tmp_path / "c"
    write_cache(d, _spec(30), _linear_teachers(8, 30, 2), lambda u: np.array(feats[u]), counts)
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.name != ".done")
    assert len(files) > 10
    rng = np.random.default_rng(0)
    for p in files:
        data = bytearray(p.read_bytes())
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))  # one flipped bit anywhere in the file
        orig = p.read_bytes()
        p.write_bytes(bytes(data))
        problems = verify_cache(d)
        p.write_bytes(orig)
        assert problems, f"corruption of {p.relative_to(d)} byte {i} not detected"
    assert verify_cache(d) == []
    # A missing part file is reported too.
    part = next((d / "probs").glob("part-*.bin"))
    part.rename(part.with_suffix(".moved"))
    assert any("missing" in s for s in verify_cache(d))


def test_verify_detects_data_and_label_mismatches(tmp_path: Path) -> None:
    counts = make_data_dir(tmp_path / "train")
    other = make_data_dir(tmp_path / "other", seed=1)  # same utterance ids, other frame counts
    feats = FrameStore(tmp_path / "train" / "feats")
    d = tmp_path / "c"
    write_cache(d, _spec(30), _linear_teachers(8, 30, 2), lambda u: np.array(feats[u]), counts)
    assert verify_cache(d, tmp_path / "train") == []
    assert any("frame count" in s for s in verify_cache(d, tmp_path / "other"))
    assert other != counts
    make_data_dir(tmp_path / "wide", num_classes=31)
    assert any("classes" in s for s in verify_cache(d, labels_dir=tmp_path / "wide/labels/ali"))


def test_training_refuses_a_mismatched_cache(tmp_path: Path) -> None:
    counts = make_data_dir(tmp_path / "train")
    feats = FrameStore(tmp_path / "train" / "feats")
    labels = FrameStore(tmp_path / "train" / "labels" / "ali")
    cache = write_cache(tmp_path / "c", _spec(30), _linear_teachers(8, 30, 2), lambda u: np.array(feats[u]), counts)
    utts = sorted(counts)
    ok = open_cached_source(tmp_path / "c", T=2.0, feats=feats, labels=labels, utts=utts)
    assert ok.T == 2.0
    base = dict(T=2.0, feature_fingerprint=FEATS_FP, num_classes=30, lang_fingerprint=LANG_FP, frame_counts=counts)
    check_compatible(cache, **base)
    for change, pattern in [
        (dict(T=1.0), "temperature"),
        (dict(feature_fingerprint="x" * 64), "features"),
        (dict(num_classes=31), "classes"),
        (dict(lang_fingerprint="y" * 64), "inventory"),
        (dict(frame_counts={**counts, utts[0]: counts[utts[0]] + 1}), "differ"),
        (dict(frame_counts={**counts, "spk9-new": 10}), "not in the cache"),
    ]:
        with pytest.raises(AsrkdError, match=pattern):
            check_compatible(cache, **{**base, **change})


@pytest.mark.parametrize("storage", ["dense", "topk"])
def test_cached_and_online_give_the_same_loss(tmp_path: Path, storage: str) -> None:
    """The loop's cached source and online teachers on the same batch: same loss (fp16)."""
    from asrkd.features.cmvn import load_cmvn
    from asrkd.softtargets.run import cache_targets
    from asrkd.data.labelled import open_labelled_frames
    from asrkd.train.data import FrameLoader

    make_data_dir(tmp_path / "train")
    cmvn = load_cmvn(tmp_path / "train")["global"]
    paths = [tmp_path / f"t{i}.pt" for i in range(3)]
    modules = [make_teacher(p, cmvn, seed=i) for i, p in enumerate(paths)]
    T = 2.0
    cache_targets([str(p) for p in paths], tmp_path / "train", tmp_path / "c", T=T, combine="mean",
                  storage=storage, k=5, precision="fp32")
    feats, labels, utts = open_labelled_frames(tmp_path / "train" / "feats", tmp_path / "train" / "labels" / "ali")
    src = open_cached_source(tmp_path / "c", T=T, feats=feats, labels=labels, utts=utts)
    loader = FrameLoader(feats, labels, utts, 2, 1, 64, cmvn, 10**6, seed=0, prefetch=0, soft=src)
    fmt = src.format if storage == "topk" else None
    online = OnlineSource(modules, T, "mean", fmt)
    student = torch.nn.Linear(4 * 8, 30)
    # The loader-side online source: teachers loaded from the checkpoints, run per batch.
    teachers = [load_model(p) for p in paths]
    online_loader = FrameLoader(feats, labels, utts, 2, 1, 64, cmvn, 10**6, seed=0, prefetch=0,
                                soft=OnlineTeacherSource(teachers, feats, T, "mean", fmt))
    n = 0
    for batch, obatch in zip(loader.batches(0), online_loader.batches(0)):
        assert torch.equal(batch.utts, obatch.utts) and torch.equal(batch.frames, obatch.frames)
        logits = student(batch.x.reshape(batch.size, -1))
        cached = kd_loss(logits, batch.labels, batch.soft, 0.5, T)
        for soft in (online(batch.x), obatch.soft):
            ref = kd_loss(logits, batch.labels, soft, 0.5, T)
            torch.testing.assert_close(cached.total, ref.total, rtol=2e-3, atol=1e-4)
            torch.testing.assert_close(cached.soft, ref.soft, rtol=5e-3, atol=2e-4)
        n += 1
    assert n == loader.steps_per_epoch(0) > 3
    # The check has teeth: targets at another temperature give another loss.
    batch = next(iter(loader.batches(0)))
    logits = student(batch.x.reshape(batch.size, -1))
    other = kd_loss(logits, batch.labels, OnlineSource(modules, 1.0, "mean", fmt)(batch.x), 0.5, T)
    assert abs(other.total.item() - kd_loss(logits, batch.labels, batch.soft, 0.5, T).total.item()) > 1e-2
