"""tools/gpu_check.sh on a machine without CUDA: exit status 2, one clear message, nothing run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_cuda_it_exits_2_having_run_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    r = subprocess.run(["bash", str(REPO / "tools" / "gpu_check.sh"), str(work)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False): nothing run"]
    assert not work.exists()
