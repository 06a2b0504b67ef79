"""recipes/lib.sh's transfer-set helpers: which data each kind of model trains on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "recipes" / "lib.sh"


def _run(tmp_path: Path, copies: int, teachers_on_copies: str) -> list[str]:
    """Lines printed by kd_data, teacher_data_args and transfer_set (asrkd stubbed to echo)."""
    script = (f'source "{LIB}"; asrkd() {{ echo "asrkd $*"; }}; transfer_copies={copies}; '
              f'teachers_on_copies={teachers_on_copies}; echo "kd=$(kd_data)"; '
              'echo "teachers=[$(teacher_data_args)]"; transfer_set')
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


@pytest.mark.parametrize("teachers_on_copies", ["false", "true"])
def test_no_transfer_set_means_data_train_for_everyone(tmp_path: Path, teachers_on_copies: str) -> None:
    assert _run(tmp_path, 0, teachers_on_copies) == ["kd=data/train", "teachers=[]"]


def test_transfer_set_for_baselines_and_students_only(tmp_path: Path) -> None:
    assert _run(tmp_path, 2, "false") == [
        "kd=data/train_aug2", "teachers=[]",
        "asrkd augment-feats data/train data/train/labels/ali data/train_aug2 --copies 2 --seed 0"]


def test_teachers_on_copies_get_their_own_seed(tmp_path: Path) -> None:
    """The teachers' copies are drawn with another seed: the transfer set's copies stay unseen."""
    assert _run(tmp_path, 1, "true") == [
        "kd=data/train_aug1",
        "teachers=[--feats data/train_aug1_teachers --labels data/train_aug1_teachers/labels/ali]",
        "asrkd augment-feats data/train data/train/labels/ali data/train_aug1 --copies 1 --seed 0",
        "asrkd augment-feats data/train data/train/labels/ali data/train_aug1_teachers --copies 1 --seed 1"]
