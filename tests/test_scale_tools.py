"""tools/scale_rehearsal.py and tools/scale_costing.py at toy size: the rehearsal runs the real
commands end to end and reports every figure docs/scale.md quotes; the costing reads it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rehearsal_and_costing_at_toy_size(tmp_path: Path) -> None:
    env_cmd = [sys.executable, str(ROOT / "tools" / "scale_rehearsal.py"), "--frames", "60000", "--classes", "300",
               "--k", "5", "--layers", "1", "--hidden", "32", "--work", str(tmp_path / "work")]
    r = subprocess.run(env_cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["frames"] == 60000 and out["classes"] == 300
    assert not (tmp_path / "work").exists()  # removed afterwards without --keep
    steps = out["steps"]
    assert set(steps) == {"cache_targets", "distill_epoch", "hard_epoch"}
    for s in steps.values():
        assert s["seconds"] > 0 and s["frames_per_s"] > 0 and 50 * 2**20 < s["peak_rss_bytes"] < 8 * 2**30
    # A top-k cache of k = 5: 4k + 4 = 24 B of arrays per frame, plus indexes and metadata.
    assert 24 * 60000 <= out["cache_bytes"] <= out["cache_bytes_limit"] == int(1.05 * 60000 * 24)
    assert out["distill_over_hard"] == round(steps["distill_epoch"]["seconds"] / steps["hard_epoch"]["seconds"], 3)
    assert set(out["targets_met"]) == {"peak_rss_le_4GB", "distill_over_hard_le_1.10", "cache_le_1.05x"}

    (tmp_path / "rehearsal.json").write_text(r.stdout)
    (tmp_path / "bench.json").write_text(json.dumps({"train_frames_per_s_hinton2015": 300.0,
                                                     "train_mfu_hinton2015": 0.25}) + "\n")
    c = subprocess.run([sys.executable, str(ROOT / "tools" / "scale_costing.py"), "--rehearsal",
                        str(tmp_path / "rehearsal.json"), "--bench", str(tmp_path / "bench.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert c.returncode == 0, c.stderr[-2000:]
    md = c.stdout
    assert "| 20 | 84 |" in md and "MFU assumed | 0.250" in md
    # One GPU at MFU 0.25 of 989 TFLOP/s: 989e12 * 0.25 / (3 * 169e6 FLOP) ~ 488k frames/s of training.
    assert "| student training, one epoch | 487," in md or "| student training, one epoch | 488," in md
