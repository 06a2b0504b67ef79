"""``feats`` benchmark: feature extraction speed on one core, as multiples of real time.

``feats_xrt_1core`` = audio duration / wall time of ``asrkd.features.compute.compute_feats`` (nj=1,
one torch thread) over the LJ Speech subset (22.05 kHz -> 16 kHz), everything included:
reading the data directory, decoding, resampling, fbank, writing the frame store (fsync),
utt2num_frames, CMVN statistics and the store checksums. Median of ``--runs`` runs after one
small warm-up run (numba cache load, imports). Detail keys time the pieces separately.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import BenchSkipped, say


def _make_data_dir(wavs: list[Path], d: Path) -> None:
    from asrkd.data.datadir import DataDir, write_data_dir

    utts = {f"LJ-{w.stem}": str(w) for w in wavs}
    write_data_dir(d, DataDir(wav=utts, text={u: "X" for u in utts}, utt2spk={u: "LJ" for u in utts}))


def run(args: argparse.Namespace) -> dict[str, float]:
    wav_dir = Path(args.data) / "ljspeech" / "LJSpeech-1.1" / "wavs"
    wavs = sorted(wav_dir.glob("*.wav"))
    if not wavs:
        raise BenchSkipped(f"no LJ Speech wavs in {wav_dir}")

    import soundfile as sf
    import torch

    torch.set_num_threads(1)
    from asrkd.data.audio import read_audio_file, resample
    from asrkd.features.compute import compute_feats
    from asrkd.features.fbank import FeatureConfig, compute_fbank

    logging.getLogger("asrkd").setLevel(logging.WARNING)
    cfg = FeatureConfig()
    audio_s = sum(sf.info(str(w)).duration for w in wavs)
    out: dict[str, float] = {"feats_audio_seconds": round(audio_s, 2), "feats_num_utts": float(len(wavs))}
    with tempfile.TemporaryDirectory(prefix="asrkd-bench-feats-") as tmp:
        warm = Path(tmp) / "warm"
        _make_data_dir(wavs[:5], warm)
        compute_feats(warm, cfg, force=True)
        data = Path(tmp) / "lj"
        _make_data_dir(wavs, data)
        walls, cpus = [], []
        for i in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            compute_feats(data, cfg, nj=1, force=True)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            say(f"[bench] feats run {i + 1}/{args.runs}: {walls[-1]:.2f} s = {audio_s / walls[-1]:.0f}x real time")
        for i, w in enumerate(walls, 1):
            out[f"feats_xrt_run{i}"] = round(audio_s / w, 1)
        out["feats_xrt_1core"] = round(audio_s / statistics.median(walls), 1)
        # > 1 would mean some library used more than one core behind our back; well below 1
        # means the machine was busy and the wall-clock figure understates the speed, which
        # the CPU-time figure (same runs, median process CPU time) does not.
        out["feats_cpu_over_wall"] = round(sum(cpus) / sum(walls), 3)
        out["feats_xrt_1core_cputime"] = round(audio_s / statistics.median(cpus), 1)

    # The pieces, each over the whole subset once (decode, resample, fbank on resampled audio).
    t0 = time.perf_counter()
    raw = [read_audio_file(str(w)) for w in wavs]
    out["feats_piece_decode_xrt"] = round(audio_s / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    res = [resample(x, sr, cfg.sample_rate) for x, sr in raw]
    out["feats_piece_resample_xrt"] = round(audio_s / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    for x in res:
        compute_fbank(x, cfg)
    out["feats_piece_fbank_xrt"] = round(audio_s / (time.perf_counter() - t0), 1)
    return out
