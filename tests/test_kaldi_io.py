"""Kaldi interop: export-feats -> ark/scp readable by kaldiio; import-feats back; id checks."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
from _feats_fixtures import write_data_dir_for

from asrkd.cli import main as cli_main
from asrkd.features.cmvn import load_cmvn
from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore, write_store
from asrkd.features.kaldi_io import export_feats, import_feats


def _data_with_feats(path, n=4, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    utts = {f"spk{i % 2}-u{i}": "/nonexistent.wav" for i in range(n)}
    write_data_dir_for(path, utts)
    feats = {u: rng.standard_normal((int(rng.integers(3, 40)), dim)).astype(np.float32) for u in utts}
    write_store(path / "feats", feats.items(), np.float32, (dim,), attrs={"fingerprint": "x"})
    return feats


def test_export_import_round_trip(tmp_path):
    feats = _data_with_feats(tmp_path / "a")
    assert cli_main(["export-feats", str(tmp_path / "a"), str(tmp_path / "k" / "feats")]) == 0
    # Readable by kaldiio both through the scp (ark:offset) and by scanning the ark.
    scp = kaldiio.load_scp(str(tmp_path / "k" / "feats.scp"))
    assert sorted(scp) == sorted(feats)
    for u, a in feats.items():
        np.testing.assert_array_equal(scp[u], a)
    assert {u: m.shape for u, m in kaldiio.load_ark(str(tmp_path / "k" / "feats.ark"))} == {u: a.shape for u, a in feats.items()}
    # Back into a fresh data dir with the same utterances, from the scp and from the ark.
    for src in ("feats.scp", "feats.ark"):
        b = tmp_path / f"b_{src}"
        write_data_dir_for(b, {u: "/nonexistent.wav" for u in feats})
        assert cli_main(["import-feats", str(tmp_path / "k" / src), str(b)]) == 0
        store = FrameStore(b / "feats")
        assert store.keys() == sorted(feats)
        for u, a in feats.items():
            np.testing.assert_array_equal(store[u], a)
        assert read_table(b / "utt2num_frames") == {u: str(len(a)) for u, a in feats.items()}
        allf = np.concatenate([feats[u] for u in sorted(feats)]).astype(np.float64)
        np.testing.assert_allclose(load_cmvn(b)["global"]["sum"], allf.sum(0), rtol=1e-9)
        assert set(load_cmvn(b)["speakers"]) == {"spk0", "spk1"}
        assert len(store.attrs["fingerprint"]) == 64


def test_import_checks_ids_and_refuses_to_overwrite(tmp_path):
    feats = _data_with_feats(tmp_path / "a")
    export_feats(tmp_path / "a", tmp_path / "k")
    other = write_data_dir_for(tmp_path / "other", {"spk9-x": "/nonexistent.wav"})
    with pytest.raises(AsrkdError, match="not in"):
        import_feats(tmp_path / "k.scp", other)
    assert not (other / "feats" / ".done").exists() and not (other / "utt2num_frames").exists()
    with pytest.raises(AsrkdError, match="--force"):
        import_feats(tmp_path / "k.scp", tmp_path / "a")  # already has a complete store
    import_feats(tmp_path / "k.scp", tmp_path / "a", force=True)
    assert FrameStore(tmp_path / "a" / "feats").keys() == sorted(feats)
    broken = tmp_path / "broken.ark"
    broken.write_bytes(b"spk0-u0 \x00Bxx garbage")
    with pytest.raises(AsrkdError, match="cannot read"):
        import_feats(broken, tmp_path / "a", force=True)
    with pytest.raises(AsrkdError, match="not found"):
        import_feats(tmp_path / "missing.scp", tmp_path / "a", force=True)


def test_failed_import_keeps_the_existing_store(tmp_path):
    feats = _data_with_feats(tmp_path / "a")
    bad = tmp_path / "bad.ark"
    kaldiio.save_ark(str(bad), {"spk0-u0": np.zeros((3, 5), np.float32), "spk7-zz": np.zeros((3, 5), np.float32)})
    with pytest.raises(AsrkdError, match="spk7-zz"):
        import_feats(bad, tmp_path / "a", force=True)
    store = FrameStore(tmp_path / "a" / "feats")
    for u, a in feats.items():
        np.testing.assert_array_equal(store[u], a)
    assert not (tmp_path / "a" / ".feats.importing").exists()
