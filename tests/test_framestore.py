"""The frame store: round trip, parts, frame-count checks, incomplete stores, corruption."""

from __future__ import annotations

import numpy as np
import pytest

from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore, PartWriter, finalize_store, part_done, write_store


def _arrays(n: int, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"spk-{i:03d}": rng.standard_normal((int(rng.integers(1, 30)), dim)).astype(np.float32) for i in range(n)}


def test_round_trip_float_and_int(tmp_path):
    feats = _arrays(5, 4)
    store = write_store(tmp_path / "f", feats.items(), np.float32, (4,), attrs={"k": "v"})
    assert store.keys() == sorted(feats) and store.attrs == {"k": "v"}
    for u, a in feats.items():
        np.testing.assert_array_equal(store[u], a)
        assert store.num_frames(u) == len(a)
    labels = {u: np.arange(len(a), dtype=np.int32) for u, a in feats.items()}
    lab = write_store(tmp_path / "l", labels.items(), np.int32, ())
    assert lab["spk-002"].shape == (len(feats["spk-002"]),)
    np.testing.assert_array_equal(lab["spk-002"], labels["spk-002"])


def test_multiple_parts_merge(tmp_path):
    feats = _arrays(7, 3)
    utts = sorted(feats)
    for name, chunk in (("0", utts[:3]), ("1", utts[3:])):
        with PartWriter(tmp_path, name, np.float32, (3,)) as w:
            for u in chunk:
                w.add(u, feats[u])
        assert part_done(tmp_path, name)
    store = finalize_store(tmp_path, np.float32, (3,), expected_frames={u: len(a) for u, a in feats.items()})
    assert len(store) == 7 and store.total_frames == sum(len(a) for a in feats.values())
    for u in utts:
        np.testing.assert_array_equal(store[u], feats[u])


def test_frame_count_mismatch_raises(tmp_path):
    feats = _arrays(3, 2)
    expected = {u: len(a) for u, a in feats.items()}
    expected["spk-001"] += 1
    with pytest.raises(AsrkdError, match="spk-001"):
        write_store(tmp_path, feats.items(), np.float32, (2,), expected_frames=expected)
    assert not (tmp_path / ".done").exists()


def test_check_frames_and_wrong_shape(tmp_path):
    feats = _arrays(2, 2)
    store = write_store(tmp_path / "s", feats.items(), np.float32, (2,))
    with pytest.raises(AsrkdError, match="missing"):
        store.check_frames({**{u: len(a) for u, a in feats.items()}, "spk-999": 3})
    with pytest.raises(AsrkdError, match="row shape"):
        with PartWriter(tmp_path / "t", "0", np.float32, (2,)) as w:
            w.add("u", np.zeros((3, 5), np.float32))
    assert not part_done(tmp_path / "t", "0")  # the failed part left nothing that looks complete


def test_incomplete_store_refused(tmp_path):
    w = PartWriter(tmp_path, "0", np.float32, (2,))
    w.add("a", np.zeros((2, 2), np.float32))
    w.close()  # part written, store never finalised (as after a kill)
    with pytest.raises(AsrkdError, match="incomplete"):
        FrameStore(tmp_path)


def test_verify_detects_flipped_byte(tmp_path):
    store = write_store(tmp_path, _arrays(3, 4).items(), np.float32, (4,))
    assert store.verify() == []
    part = tmp_path / "part-0.bin"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    problems = FrameStore(tmp_path, verify=False).verify()
    assert len(problems) == 1 and "checksum" in problems[0]
    with pytest.raises(AsrkdError, match="damaged.*checksum mismatch.*--force"):
        FrameStore(tmp_path)  # opening verifies by default


def test_open_names_the_utterance_with_a_nan(tmp_path):
    arrays = _arrays(4, 3)
    write_store(tmp_path, arrays.items(), np.float32, (3,))
    utt = sorted(arrays)[2]
    store = FrameStore(tmp_path)
    e_offset = next(i for i, u in enumerate(store.keys()) if u == utt)
    rows_before = sum(store.num_frames(u) for u in store.keys()[:e_offset])
    part = tmp_path / "part-0.bin"
    data = bytearray(part.read_bytes())
    data[(rows_before * 3 + 1) * 4:(rows_before * 3 + 2) * 4] = np.array([np.nan], np.float32).tobytes()
    part.write_bytes(bytes(data))
    with pytest.raises(AsrkdError, match=f"non-finite values.*1 utterance.*{utt}"):
        FrameStore(tmp_path)


def test_open_refuses_a_truncated_part(tmp_path):
    write_store(tmp_path, _arrays(3, 4).items(), np.float32, (4,))
    part = tmp_path / "part-0.bin"
    part.write_bytes(part.read_bytes()[:-16])
    with pytest.raises(AsrkdError, match="truncated"):
        FrameStore(tmp_path)


def test_verification_can_be_turned_off_and_is_done_once(tmp_path, monkeypatch):
    from asrkd import framestore

    write_store(tmp_path, _arrays(3, 4).items(), np.float32, (4,))
    calls = []
    real = framestore._scan_part
    monkeypatch.setattr(framestore, "_scan_part", lambda *a: (calls.append(1), real(*a))[1])
    FrameStore(tmp_path)
    FrameStore(tmp_path)
    assert len(calls) == 1  # unchanged files are not hashed twice by one process
    framestore.set_verify_on_open(False)
    try:
        part = tmp_path / "part-0.bin"
        data = bytearray(part.read_bytes())
        data[5] ^= 0x01
        part.write_bytes(bytes(data))
        FrameStore(tmp_path)  # --no-verify: opens
        assert len(calls) == 1
    finally:
        framestore.set_verify_on_open(True)
    with pytest.raises(AsrkdError, match="checksum"):
        FrameStore(tmp_path)  # changed files are verified again


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_read_gives_the_mapped_rows_without_holding_pages(tmp_path):
    """``read`` returns the same rows as the mapping (also into a given array) and, unlike a
    pass through the mapping, leaves no page of the store in the resident set."""
    import sys

    rng = np.random.default_rng(0)
    items = [(f"u{i:03d}", rng.standard_normal((4000, 40)).astype(np.float16)) for i in range(100)]  # 32 MB
    write_store(tmp_path / "s", items, "float16", (40,))
    s = FrameStore(tmp_path / "s")
    for u, a in items[:3]:
        np.testing.assert_array_equal(s.read(u), a)
        out = np.empty_like(a)
        assert s.read(u, out) is out and np.array_equal(out, a)
    with pytest.raises(AsrkdError, match="cannot read"):
        s.read("u000", np.empty((3, 40), np.float16))
    if not sys.platform.startswith("linux"):
        return
    before = _rss_kib()
    total = sum(float(s.read(u)[0, 0]) for u, _ in items)
    grown_read = _rss_kib() - before
    mapped = FrameStore(tmp_path / "s")
    before = _rss_kib()
    total_m = 0.0
    for u, _ in items:  # every page touched through the mapping, as a loader would
        total_m += float(mapped[u][0, 0])
        np.asarray(mapped[u]).sum()
    grown_map = _rss_kib() - before
    assert total == total_m
    assert grown_map > 24_000  # the 32 MB store, mapped and touched
    assert grown_read < 8_000, grown_read
