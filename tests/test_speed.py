"""Speed perturbation (asrkd.data.speed): durations follow the factor, the pitch moves with it,
ids and tables follow Kaldi's convention, features and labels can be made for the new set, and
a killed or repeated run does not redo finished work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkd.cli import main
from asrkd.data.datadir import read_data_dir, read_table
from asrkd.data.speed import perturbed_id, speed_change

from _feats_fixtures import write_data_dir_for, write_noise_wav


def _tone(f0: float, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_change_scales_duration_and_pitch(factor: float) -> None:
    x = _tone(500.0, 2.0)
    y = speed_change(x, 16000, factor)
    assert abs(y.size - x.size / factor) <= 2
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak = np.argmax(spec) * 16000 / y.size
    assert abs(peak - 500.0 * factor) < 5.0


def test_perturb_speed_data_dir(tmp_path: Path, caplog) -> None:
    wavs = {f"spkA-u{i}": write_noise_wav(tmp_path / f"a{i}.wav", 1.0 + 0.5 * i, seed=i) for i in range(3)}
    src = write_data_dir_for(tmp_path / "src", wavs)
    dst = tmp_path / "sp"
    assert main(["perturb-speed", str(src), str(dst), "--nj", "2"]) == 0
    d = read_data_dir(dst)
    assert len(d.utts) == 9
    for u in wavs:
        for f in (0.9, 1.0, 1.1):
            nu = perturbed_id(u, f)
            assert d.text[nu] == "YES" and d.utt2spk[nu] == perturbed_id("spkA", f)
            assert nu.startswith(d.utt2spk[nu])  # still speaker-prefixed
    assert d.wav["spkA-u1"] == str(wavs["spkA-u1"])  # factor 1.0: the source audio itself
    n_src = sf.info(str(wavs["spkA-u2"])).frames
    n_slow = sf.info(d.wav["sp0.9-spkA-u2"]).frames
    assert abs(n_slow - n_src / 0.9) <= 2
    # Features and frame counts of the new set (labels then come from `asrkd align --model`).
    assert main(["compute-feats", str(dst)]) == 0
    frames = {u: int(n) for u, n in read_table(dst / "utt2num_frames").items()}
    assert frames["sp0.9-spkA-u2"] > frames["spkA-u2"] > frames["sp1.1-spkA-u2"]
    # A second run skips; a run with other factors is refused without --force.
    mtime = (dst / "wav" / "sp1.1-spkA-u0.flac").stat().st_mtime_ns
    assert main(["perturb-speed", str(src), str(dst)]) == 0
    assert (dst / "wav" / "sp1.1-spkA-u0.flac").stat().st_mtime_ns == mtime
    assert main(["perturb-speed", str(src), str(dst), "--factors", "0.8", "1.0"]) == 2
    assert main(["perturb-speed", str(src), str(dst), "--factors", "0.8", "1.0", "--force"]) == 0
    assert len(read_data_dir(dst).utts) == 6


def test_killed_run_keeps_finished_files(tmp_path: Path) -> None:
    wavs = {f"spkA-u{i}": write_noise_wav(tmp_path / f"a{i}.wav", 1.0, seed=i) for i in range(2)}
    src = write_data_dir_for(tmp_path / "src", wavs)
    from asrkd.data import speed

    calls = []
    real = speed._perturb_one

    def dies_on_second(item, *a):
        calls.append(item.utt)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(item, *a)

    speed._perturb_one = dies_on_second
    try:
        with pytest.raises(KeyboardInterrupt):
            speed.perturb_speed(src, tmp_path / "sp")
    finally:
        speed._perturb_one = real
    assert not (tmp_path / "sp").exists()  # nothing that looks complete
    done = sorted(p.name for p in (tmp_path / ".sp.tmp" / "wav").glob("*.flac"))
    assert done == ["sp0.9-spkA-u0.flac", "sp1.1-spkA-u0.flac"]
    mtimes = {p: (tmp_path / ".sp.tmp" / "wav" / p).stat().st_mtime_ns for p in done}
    speed.perturb_speed(src, tmp_path / "sp")
    assert {p: (tmp_path / "sp" / "wav" / p).stat().st_mtime_ns for p in done} == mtimes


def test_bad_factors_refused(tmp_path: Path, capsys) -> None:
    src = write_data_dir_for(tmp_path / "src", {"spkA-u0": write_noise_wav(tmp_path / "a.wav", 0.5)})
    assert main(["perturb-speed", str(src), str(tmp_path / "sp"), "--factors", "0.9", "0.9"]) == 2
    assert main(["perturb-speed", str(src), str(tmp_path / "sp"), "--factors", "3"]) == 2
    assert "speed factors" in capsys.readouterr().err
