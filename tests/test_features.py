"""Features: framing, fbank equality with torchaudio's Kaldi fbank, CMVN, and compute-feats
end to end (outputs, resumption after a failure, refusals, bad inputs)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi
from _feats_fixtures import write_data_dir_for, write_noise_wav

from asrkd.features import compute as featurize
from asrkd.data.audio import load_audio
from asrkd.cli import main as cli_main
from asrkd.features.cmvn import CmvnAccumulator, apply_cmvn, load_cmvn, mean_std
from asrkd.config import load_config
from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from asrkd.features.fbank import FeatureConfig, compute_fbank
from asrkd.framestore import FrameStore
from asrkd.framing import FrameSpec, num_frames

# Stated tolerance against torchaudio.compliance.kaldi.fbank (same options, dither 0), in
# natural-log mel energy units. Both are float32 computations that round differently (DC
# removal, FFT), so the bound is on rounding, not on the algorithm (a wrong window, mel matrix,
# scale or pre-emphasis moves features by >= 1e-2 on average):
# 1. Audio with energy across the band (LJ Speech 22.05 -> 16 kHz, synthetic noise): against
#    torchaudio's float32 output, max |diff| <= 5e-3 and mean |diff| <= 2e-5.
# 2. Any audio, including 8 kHz corpora upsampled to 16 kHz, whose 4-8 kHz band is empty down to
#    float32 rounding noise (there torchaudio's float32 output itself is up to ~0.3 away from its
#    float64 output): our deviation from torchaudio's float64 output is at most 1.5x torchaudio
#    float32's own deviation from it (+1e-3), in max and in mean.
MAX_ABS_TOL = 5e-3
MEAN_ABS_TOL = 2e-5


def _kaldi_reference(x: np.ndarray, cfg: FeatureConfig, dtype: torch.dtype = torch.float32) -> np.ndarray:
    wave = torch.from_numpy(x).to(dtype).unsqueeze(0) * cfg.waveform_scale
    return kaldi.fbank(
        wave, num_mel_bins=cfg.num_mel_bins, frame_length=cfg.frame_length_ms, frame_shift=cfg.frame_shift_ms,
        snip_edges=cfg.snip_edges, dither=0.0, preemphasis_coefficient=cfg.preemphasis,
        remove_dc_offset=cfg.remove_dc_offset, window_type=cfg.window, low_freq=cfg.low_freq,
        high_freq=cfg.high_freq, use_energy=cfg.use_energy, energy_floor=cfg.energy_floor,
        sample_frequency=cfg.sample_rate, raw_energy=True, round_to_power_of_two=cfg.round_to_power_of_two,
    ).numpy().astype(np.float32)


def _assert_close_to_kaldi(x: np.ndarray, cfg: FeatureConfig) -> None:
    ours = compute_fbank(x, cfg)
    ref = _kaldi_reference(x, cfg)
    assert ours.shape == ref.shape == (num_frames(len(x), cfg.frame_spec()), cfg.dim)
    diff = np.abs(ours - ref)
    assert diff.max() <= MAX_ABS_TOL, diff.max()
    assert diff.mean() <= MEAN_ABS_TOL, diff.mean()


# --- framing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [FrameSpec(), FrameSpec(sample_rate=8000), FrameSpec(frame_length_ms=20.0, frame_shift_ms=7.0)])
def test_num_frames_matches_kaldi_formula(spec):
    L, S = spec.window_samples, spec.shift_samples
    for n in range(0, 3 * L + 7 * S):
        # Count the windows [i*S, i*S + L) that fit in n samples (Kaldi, snip_edges=true).
        brute = sum(1 for i in range(n + 1) if i * S + L <= n)
        assert num_frames(n, spec) == brute
        no_snip = FrameSpec(spec.sample_rate, spec.frame_length_ms, spec.frame_shift_ms, snip_edges=False)
        assert num_frames(n, no_snip) == (n + S // 2) // S  # Kaldi's NumFrames without snip-edges


@pytest.mark.parametrize("n", [399, 400, 401, 559, 560, 561, 1001, 12345, 16001])
@pytest.mark.parametrize("snip", [True, False])
def test_fbank_length_is_num_frames(n, snip):
    cfg = FeatureConfig(snip_edges=snip)
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    assert compute_fbank(x, cfg).shape == (num_frames(n, cfg.frame_spec()), 40)
    assert compute_fbank(x[:399], FeatureConfig()).shape == (0, 40)  # shorter than one window


# --- fbank equality with torchaudio's Kaldi-compliant fbank --------------------------------------


def _assert_as_accurate_as_kaldi_float32(x: np.ndarray, cfg: FeatureConfig) -> None:
    ours = compute_fbank(x, cfg)
    exact = _kaldi_reference(x, cfg, torch.float64)
    theirs = np.abs(_kaldi_reference(x, cfg) - exact)
    mine = np.abs(ours - exact)
    assert mine.max() <= 1.5 * theirs.max() + 1e-3, (mine.max(), theirs.max())
    assert mine.mean() <= 1.5 * theirs.mean() + 1e-5, (mine.mean(), theirs.mean())


def test_fbank_matches_kaldi_on_real_speech(yesno_wavs, ljspeech_wavs):
    for wav in ljspeech_wavs:
        _assert_close_to_kaldi(load_audio(str(wav), 16000), FeatureConfig())
    for wav in yesno_wavs[:2] + ljspeech_wavs[:1]:
        _assert_as_accurate_as_kaldi_float32(load_audio(str(wav), 16000), FeatureConfig())


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"snip_edges": False},
        {"use_energy": True},
        {"use_energy": True, "energy_floor": 1.0},
        {"window": "hamming", "preemphasis": 0.0, "remove_dc_offset": False},
        {"window": "hanning", "low_freq": 64.0, "high_freq": -400.0, "num_mel_bins": 23},
        {"window": "rectangular"},
        {"window": "blackman", "num_mel_bins": 80},
        {"sample_rate": 8000, "high_freq": 3800.0},
    ],
)
def test_fbank_matches_kaldi_for_options(tmp_path, opts):
    cfg = FeatureConfig(**opts)
    x = load_audio(str(write_noise_wav(tmp_path / "n.wav", 0.731, cfg.sample_rate)), cfg.sample_rate)
    _assert_close_to_kaldi(x, cfg)


def test_fbank_of_silence_is_the_log_floor():
    feats = compute_fbank(np.zeros(4000, np.float32))
    np.testing.assert_array_equal(feats, np.full_like(feats, np.log(np.finfo(np.float32).eps)))


def test_bad_feature_configs_rejected():
    for bad in [{"dither": 1.0}, {"low_freq": 9000.0}, {"high_freq": 20.0}]:
        with pytest.raises(AsrkdError):
            compute_fbank(np.zeros(1000, np.float32), FeatureConfig(**bad))


# --- CMVN ----------------------------------------------------------------------------------------


def test_cmvn_statistics_and_normalisation():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((50, 3)) * [1, 2, 3] + [5, -1, 0]).astype(np.float32)
    b = (rng.standard_normal((30, 3)) * 4 + 2).astype(np.float32)
    acc = CmvnAccumulator(3)
    acc.add("s1", a[:20])
    acc.add("s2", b)
    other = CmvnAccumulator(3)
    other.add("s1", a[20:])
    acc.merge(other)
    stats = acc.to_json()
    both = np.concatenate([a, b]).astype(np.float64)
    assert stats["global"]["count"] == 80 and stats["speakers"]["s1"]["count"] == 50
    np.testing.assert_allclose(stats["global"]["sum"], both.sum(0), rtol=1e-10)
    np.testing.assert_allclose(stats["global"]["sumsq"], (both**2).sum(0), rtol=1e-10)
    mean, std = mean_std(stats["speakers"]["s2"])
    np.testing.assert_allclose(mean, b.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, b.std(0), rtol=1e-5)
    norm = apply_cmvn(np.concatenate([a, b]), stats["global"])
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(norm.std(0), 1, atol=1e-5)
    centred = apply_cmvn(a, stats["speakers"]["s1"], variance=False)
    np.testing.assert_allclose(centred, a - a.mean(0), atol=1e-5)
    with pytest.raises(AsrkdError):
        apply_cmvn(a, stats)  # the whole file, not one entry
    const = CmvnAccumulator(1)
    const.add("s", np.ones((4, 1), np.float32))  # zero variance: floored, finite output
    assert np.isfinite(apply_cmvn(np.ones((4, 1), np.float32), const.to_json()["global"])).all()


# --- compute-feats end to end ----------------------------------------------------------------------


def _yesno_dir(tmp_path, wavs, name="data"):
    return write_data_dir_for(tmp_path / name, {f"spk1-{w.stem}": w for w in wavs})


def test_compute_feats_cli_end_to_end(tmp_path, yesno_wavs):
    d = _yesno_dir(tmp_path, yesno_wavs)
    proc = subprocess.run([sys.executable, "-m", "asrkd", "compute-feats", str(d)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # 8 kHz files resampled to 16 kHz have exactly twice the samples: Kaldi's formula on that.
    expected = {f"spk1-{w.stem}": 1 + (2 * sf.info(str(w)).frames - 400) // 160 for w in yesno_wavs}
    assert {u: int(n) for u, n in read_table(d / "utt2num_frames").items()} == expected
    assert f"{len(expected)} utterances, {sum(expected.values())} frames" in proc.stdout
    store = FrameStore(d / "feats")
    assert store.frame_counts() == expected and store.shape == (40,) and store.dtype == np.float32
    assert store.attrs["fingerprint"] == FeatureConfig().fingerprint()
    assert store.attrs["feature_config"]["num_mel_bins"] == 40
    assert load_config(FeatureConfig, d / "feats" / "config.yaml") == FeatureConfig()
    utt = sorted(expected)[0]
    ref = compute_fbank(load_audio(str(yesno_wavs[0]), 16000), FeatureConfig())
    np.testing.assert_array_equal(store[utt], ref)  # the store holds exactly compute_fbank's output
    durs = read_table(d / "utt2dur")
    assert abs(float(durs[utt]) - sf.info(str(yesno_wavs[0])).duration) < 1e-3
    cmvn = load_cmvn(d)
    assert cmvn["global"]["count"] == sum(expected.values()) == cmvn["speakers"]["spk1"]["count"]
    allf = np.concatenate([store[u] for u in store.keys()]).astype(np.float64)
    np.testing.assert_allclose(cmvn["global"]["sum"], allf.sum(0), rtol=1e-9)
    # Complete: a rerun skips; another config is refused until --force.
    assert cli_main(["compute-feats", str(d)]) == 0
    assert cli_main(["compute-feats", str(d), "--set", "num_mel_bins=23"]) == 2
    assert FrameStore(d / "feats").attrs["fingerprint"] == FeatureConfig().fingerprint()
    assert cli_main(["compute-feats", str(d), "--set", "num_mel_bins=23", "--force"]) == 0
    assert FrameStore(d / "feats").shape == (23,)


def test_segments_are_cut_before_framing(tmp_path, yesno_wavs):
    d = write_data_dir_for(tmp_path / "seg", {"rec1": yesno_wavs[0]})
    (d / "utt2spk").write_text("spk1-a spk1\nspk1-b spk1\n")
    (d / "text").write_text("spk1-a YES\nspk1-b NO\n")
    (d / "segments").write_text("spk1-a rec1 0.10 1.00\nspk1-b rec1 1.50 2.2345\n")
    featurize.compute_feats(d)
    got = FrameStore(d / "feats").frame_counts()
    # 8 kHz cut at round(t * 8000), then exactly doubled by resampling to 16 kHz.
    for utt, (s, e) in {"spk1-a": (0.10, 1.00), "spk1-b": (1.50, 2.2345)}.items():
        assert got[utt] == num_frames(2 * (round(e * 8000) - round(s * 8000)))


def _fail_on_call(monkeypatch, n: int) -> None:
    real = featurize.compute_fbank
    calls = {"n": 0}

    def flaky(x, cfg):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("simulated crash")
        return real(x, cfg)

    monkeypatch.setattr(featurize, "compute_fbank", flaky)


def test_failed_run_leaves_nothing_complete_and_rerun_is_identical(tmp_path, yesno_wavs, monkeypatch):
    ref_dir = _yesno_dir(tmp_path, yesno_wavs, "ref")
    featurize.compute_feats(ref_dir)
    d = _yesno_dir(tmp_path, yesno_wavs, "d")
    _fail_on_call(monkeypatch, 3)
    with pytest.raises(RuntimeError):
        featurize.compute_feats(d)
    assert not (d / "feats" / ".done").exists() and not (d / "feats" / "part-0.idx").exists()
    assert not (d / "utt2num_frames").exists() and not (d / "cmvn.json").exists()
    with pytest.raises(AsrkdError, match="incomplete"):
        FrameStore(d / "feats")
    monkeypatch.undo()
    featurize.compute_feats(d)
    assert (d / "feats" / "part-0.bin").read_bytes() == (ref_dir / "feats" / "part-0.bin").read_bytes()
    assert (d / "cmvn.json").read_text() == (ref_dir / "cmvn.json").read_text()


def test_parallel_jobs_and_resume_of_unfinished_part(tmp_path, yesno_wavs):
    one = _yesno_dir(tmp_path, yesno_wavs, "one")
    featurize.compute_feats(one)
    two = _yesno_dir(tmp_path, yesno_wavs, "two")
    assert cli_main(["compute-feats", str(two), "--nj", "2"]) == 0
    a, b = FrameStore(one / "feats"), FrameStore(two / "feats")
    assert len(b.meta["parts"]) == 2 and a.keys() == b.keys()
    for u in a.keys():
        np.testing.assert_array_equal(a[u], b[u])
    np.testing.assert_allclose(load_cmvn(two)["global"]["sumsq"], load_cmvn(one)["global"]["sumsq"], rtol=1e-12)
    # Simulate a run killed while job 1 was writing: its part and the marker are gone.
    feats = two / "feats"
    part0_mtime = (feats / "part-0.bin").stat().st_mtime_ns
    for name in (".done", "part-1.idx", "part-1.bin", "job-1.json", "index.tsv", "meta.json"):
        (feats / name).unlink()
    # Redo in-process, job by job, as the pool would (no second worker start-up).
    jobs = featurize._jobs(FeatureConfig(), featurize.read_data_dir(two), feats, 2, False, False)
    for _ in featurize.iter_job(jobs[1]):
        pass
    assert cli_main(["compute-feats", str(two), "--nj", "2"]) == 0  # finalises, reusing both parts
    assert (feats / "part-0.bin").stat().st_mtime_ns == part0_mtime
    c = FrameStore(feats)
    for u in a.keys():
        np.testing.assert_array_equal(a[u], c[u])


# --- bad input ---------------------------------------------------------------------------------------


def _bad_inputs(tmp_path, good):
    """One data directory entry per kind of bad audio, plus one good utterance."""
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000, subtype="PCM_16")
    full = write_noise_wav(tmp_path / "full.wav", 1.0)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(full.read_bytes()[: 44 + 8000])
    short = write_noise_wav(tmp_path / "short.wav", 0.02)  # 20 ms < one 25 ms window
    return {
        "spk1-missing": (str(tmp_path / "nope.wav"), "not found"),
        "spk1-garbage": (str(garbage), "cannot decode"),
        "spk1-empty": (str(empty), "empty"),
        "spk1-truncated": (str(truncated), "truncated"),
        "spk1-short": (str(short), "too short for one frame"),
        "spk1-pipe": (f"cat {full} |", "command pipe"),
        "spk1-zgood": (str(good), None),
    }


def test_each_bad_input_fails_clearly_naming_the_utterance(tmp_path, capsys):
    cases = _bad_inputs(tmp_path, write_noise_wav(tmp_path / "good.wav", 0.5))
    for utt, (spec, phrase) in cases.items():
        if phrase is None:
            continue
        d = write_data_dir_for(tmp_path / utt, {utt: spec, "spk1-zgood": cases["spk1-zgood"][0]})
        assert cli_main(["compute-feats", str(d)]) == 2
        err = capsys.readouterr().err
        assert "error:" in err and utt in err and phrase in err and "Traceback" not in err, err
        assert not (d / "feats" / ".done").exists() and not (d / "utt2num_frames").exists()


def test_skip_bad_skips_counts_and_lists(tmp_path, capsys):
    cases = _bad_inputs(tmp_path, write_noise_wav(tmp_path / "good.wav", 0.5))
    d = write_data_dir_for(tmp_path / "all", {u: s for u, (s, _) in cases.items()})
    assert cli_main(["compute-feats", str(d), "--skip-bad"]) == 0
    assert "1 utterances, 48 frames, 6 skipped" in capsys.readouterr().out
    skipped = read_table(d / "feats" / "skipped")
    assert set(skipped) == {u for u, (_, p) in cases.items() if p}
    for utt, reason in skipped.items():
        assert cases[utt][1] in reason
    assert FrameStore(d / "feats").keys() == ["spk1-zgood"]
    assert read_table(d / "utt2num_frames") == {"spk1-zgood": "48"}
    # Pipes run when explicitly allowed.
    assert cli_main(["compute-feats", str(d), "--skip-bad", "--allow-pipes", "--force"]) == 0
    assert "spk1-pipe" in FrameStore(d / "feats")
    # Nothing usable at all is an error, not an empty store.
    bad_only = write_data_dir_for(tmp_path / "bad", {"spk1-x": cases["spk1-missing"][0]})
    assert cli_main(["compute-feats", str(bad_only), "--skip-bad"]) == 2
    assert "every utterance was skipped" in capsys.readouterr().err
