"""``asrkd cache-targets`` / ``verify-targets`` end to end: resumable byte-identical output,
rank/job splitting, corruption detection from the command line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asrkd.cli import main
from asrkd.fileio import read_json

from _kd_fixtures import make_data_dir, teacher_args

ROOT = Path(__file__).resolve().parents[1]
ASRKD = [sys.executable, "-m", "asrkd"]

# A cache writer run in a subprocess, with teachers slowed down so it can be killed midway.
WRITER = """
import sys, time
import numpy as np, torch
sys.path.insert(0, {tests!r})
from asrkd.framestore import FrameStore
from asrkd.data.datadir import read_table
from asrkd.softtargets.cache import CacheSpec, write_cache
data, out, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
feats = FrameStore(data + "/feats")
counts = {{u: int(n) for u, n in read_table(data + "/utt2num_frames").items()}}
Ws = [torch.randn(8, 30, generator=torch.Generator().manual_seed(s)) * 2 for s in range(3)]
def teacher(W):
    def f(x):
        time.sleep(delay)
        return x @ W
    return f
spec = CacheSpec(T=2.0, combine="mean", format="topk", k=5, num_classes=30, lang_fingerprint="l",
                 feature_fingerprint="f", teachers=({{"path": "t", "sha256": "0"}},), shard_frames=100)
write_cache(out, spec, [teacher(W) for W in Ws], lambda u: np.array(feats[u]), counts)
"""


def _tree(d: Path) -> dict[str, bytes]:
    """Every file's bytes but the completion markers (they hold the finishing time)."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != ".done"}


def _writer(tmp_path: Path, out: Path, delay: float) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(ROOT / "tests")))
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "train"), str(out), str(delay)],
                            cwd=ROOT, stderr=subprocess.DEVNULL)


def _done_shards(out: Path) -> int:
    return len(list((out / "tail").glob("part-*.idx"))) if (out / "tail").is_dir() else 0


def test_killed_run_resumes_byte_identical(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "train")
    ref = tmp_path / "ref"
    reference = _writer(tmp_path, ref, 0.0)  # uninterrupted, runs alongside
    out = tmp_path / "out"
    # Kill (SIGKILL: no cleanup) at two points of progress, resuming in between.
    for at in (1, 4):
        p = _writer(tmp_path, out, 0.03)
        deadline = time.time() + 60
        while _done_shards(out) < at and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        assert p.poll() is None, "the writer finished before it could be killed"
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not (out / ".done").exists()
    assert reference.wait(120) == 0
    total = len(read_json(ref / "meta.json")["shards"])
    assert total >= 6
    assert _done_shards(out) < total or not (out / "meta.json").exists()
    assert _writer(tmp_path, out, 0.0).wait(120) == 0
    assert (out / ".done").exists()
    got, want = _tree(out), _tree(ref)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs after kill and resume"


def test_jobs_and_torchrun_ranks_write_the_same_cache(tmp_path: Path) -> None:
    make_data_dir(tmp_path / "train")
    args = ["cache-targets", *teacher_args(tmp_path), "--feats", str(tmp_path / "train"), "--T", "2",
            "--format", "topk", "--k", "5", "--shard-frames", "150", "--precision", "fp32"]
    # Every run with one GEMM thread per process, as the jobs and ranks below: a GEMM's last bit
    # can depend on its thread count (the cache's bytes are fixed for a given count).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args + ["--out", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    meta = read_json(tmp_path / "one" / "meta.json")
    assert meta["T"] == 2.0 and meta["k"] == 5 and meta["storage"] == "topk" and meta["combine"] == "mean"
    assert [len(t["sha256"]) for t in meta["teachers"]] == [64, 64]
    assert meta["features"]["fingerprint"] and meta["label_inventory"]["num_classes"] == 30
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*ASRKD, *args, "--out", str(tmp_path / "nj"), "--nj", "2"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun
    subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "asrkd", *args, "--out", str(tmp_path / "ddp")],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    want = _tree(tmp_path / "one")
    assert _tree(tmp_path / "nj") == want
    assert _tree(tmp_path / "ddp") == want
    # A complete cache is skipped on rerun (no rewrite).
    before = (tmp_path / "one" / "meta.json").stat().st_mtime_ns
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "meta.json").stat().st_mtime_ns == before


def test_verify_targets_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_data_dir(tmp_path / "train")
    make_data_dir(tmp_path / "dev", num_utts=10, seed=3)
    out = tmp_path / "c"
    assert main(["cache-targets", *teacher_args(tmp_path), "--feats", str(tmp_path / "train"), "--T", "2",
                 "--format", "dense", "--out", str(out)]) == 0
    ok = ["verify-targets", str(out), "--feats", str(tmp_path / "train"), "--labels",
          str(tmp_path / "train" / "labels" / "ali")]
    assert main(ok) == 0
    assert main(["verify-targets", str(out), "--feats", str(tmp_path / "dev")]) == 2
    assert "frame counts" in capsys.readouterr().err
    part = sorted((out / "probs").glob("part-*.bin"))[-1]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x10
    part.write_bytes(bytes(data))
    assert main(ok) == 2
    assert "checksum mismatch" in capsys.readouterr().err
