"""Speed perturbation of a data directory (Ko et al. 2015), the 3-way scheme of Kaldi's
``perturb_data_dir_speed_3way.sh`` and icefall: every utterance at speed factors 0.9, 1.0 and 1.1.

A factor ``f`` plays the audio ``f`` times as fast: duration ``/ f``, pitch and formants ``* f``
(resampling, as sox's ``speed``, not a tempo change). The waveform goes through
``torchaudio.functional.speed`` at the internal rate and is written as 16-bit FLAC under
``DST/wav/``, so ``wav.scp`` keeps holding file paths (no command pipes). Factor 1.0 keeps the
source entries as they are.

Ids follow Kaldi: utterance ``spk1-u1`` at 0.9 becomes ``sp0.9-spk1-u1`` with speaker
``sp0.9-spk1`` (ids stay speaker-prefixed, and a perturbed copy is a speaker of its own for
CMVN). Transcripts are copied. Per-utterance tables such as ``utt2num_frames`` are not: the new
durations need new features (``asrkd compute-feats``) and new labels (``asrkd align --model``
with the aligner trained on the source set), which is how the labels follow the new frame counts.

Outputs are built in ``.DST.tmp`` and renamed into place with ``perturb.json`` (factors, rate,
source fingerprint) and ``.done`` last; audio files are written atomically, so a killed run
resumes with the files it finished.
"""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrkd.data.audio import load_audio
from asrkd.data.datadir import DataDir, Segment, read_data_dir, write_data_dir
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_bytes, atomic_write_json, is_done, mark_done, read_json, remove_tree, sha256_strings
from asrkd.logs import progress

log = logging.getLogger("asrkd.data.speed")

DEFAULT_FACTORS = (0.9, 1.0, 1.1)


def perturbed_id(key: str, factor: float) -> str:
    """Id of utterance/speaker ``key`` at speed ``factor`` (Kaldi's ``sp<factor>-`` prefix)."""
    return key if factor == 1.0 else f"sp{factor:g}-{key}"


def speed_change(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """``samples: (N,)`` float32 played ``factor`` times as fast -> ``(about N / factor,)``."""
    import torch
    import torchaudio.functional as AF

    if factor == 1.0:
        return samples
    out, _ = AF.speed(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None], sample_rate, factor)
    return out[0].numpy()


@dataclass(frozen=True)
class _Item:
    utt: str
    spec: str
    segment: Segment | None
    out_paths: tuple[tuple[float, str], ...]  # (factor, FLAC path) for every factor != 1


def _perturb_one(item: _Item, sample_rate: int, allow_pipes: bool) -> None:
    import soundfile as sf

    todo = [(f, p) for f, p in item.out_paths if not Path(p).is_file()]  # finished files are kept
    if not todo:
        return
    x = load_audio(item.spec, sample_rate, item.segment, allow_pipes)
    for f, p in todo:
        y = np.clip(speed_change(x, sample_rate, f), -1.0, 1.0)
        buf = io.BytesIO()
        sf.write(buf, y, sample_rate, format="FLAC", subtype="PCM_16")
        atomic_write_bytes(Path(p), buf.getvalue())


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core


def _perturb_task(task: tuple[_Item, int, bool]) -> None:
    _perturb_one(*task)


def _fingerprint(d: DataDir, factors: tuple[float, ...], sample_rate: int) -> str:
    entries = [f"{u} {d.utt2spk[u]} {d.wav[d.recording_of(u)]} {d.segment_of(u)} {d.text.get(u, '')}" for u in d.utts]
    return sha256_strings([repr(factors), str(sample_rate), *entries])


def perturbed_data_dir(d: DataDir, factors: tuple[float, ...], wav_dir: Path) -> DataDir:
    """The tables of the perturbed directory (audio of factor ``f != 1`` at ``wav_dir/<new id>.flac``)."""
    out = DataDir(wav={}, text={}, utt2spk={}, segments={} if d.segments is not None else None)
    for f in factors:
        for u in d.utts:
            nu = perturbed_id(u, f)
            out.text[nu] = d.text[u]
            out.utt2spk[nu] = perturbed_id(d.utt2spk[u], f)
            if f == 1.0:
                rec = d.recording_of(u)
                out.wav[rec] = d.wav[rec]
                if out.segments is not None:
                    out.segments[nu] = d.segments[u]
            else:
                out.wav[nu] = str((wav_dir / f"{nu}.flac").resolve())
                if out.segments is not None:
                    out.segments[nu] = Segment(nu, 0.0, -1.0)
    return out


def perturb_speed(src: Path, dst: Path, factors: tuple[float, ...] = DEFAULT_FACTORS, sample_rate: int = 16000,
                  nj: int = 1, allow_pipes: bool = False, force: bool = False) -> DataDir:
    """Write ``dst``: every utterance of ``src`` at each speed factor (see module docstring)."""
    src, dst = Path(src), Path(dst)
    factors = tuple(float(f) for f in factors)
    if not factors or any(not 0.5 <= f <= 2.0 for f in factors) or len(set(factors)) != len(factors):
        raise AsrkdError(f"speed factors must be distinct values in [0.5, 2.0], got {list(factors)}")
    if src.resolve() == dst.resolve():
        raise AsrkdError(f"the output {dst} is also the input")
    d = read_data_dir(src)
    missing = [u for u in d.utts if u not in d.text]
    if missing:
        raise AsrkdError(f"{src}: {len(missing)} utterance(s) have no transcript, e.g. {missing[:3]} (run validate-data)")
    plan = {"factors": list(factors), "sample_rate": sample_rate, "source": str(src.resolve()),
            "source_fingerprint": _fingerprint(d, factors, sample_rate)}
    if is_done(dst) and not force:
        if read_json(dst / "perturb.json") != plan:
            raise AsrkdError(f"{dst} holds a speed-perturbed set made from other input or factors; use --force")
        log.info("%s is complete; skipping (use --force to redo)", dst)
        return read_data_dir(dst)
    if dst.exists() and any(dst.iterdir()) and not force:
        raise AsrkdError(f"{dst} exists and is not a complete speed-perturbed set (use --force to replace it)")
    tmp = dst.with_name(f".{dst.name}.tmp")
    if force or (tmp / "perturb.json").is_file() and read_json(tmp / "perturb.json") != plan:
        remove_tree(tmp)
    (tmp / "wav").mkdir(parents=True, exist_ok=True)
    atomic_write_json(tmp / "perturb.json", plan)
    wav_dir = dst / "wav"  # final location: wav.scp names it
    items = [_Item(u, d.wav[d.recording_of(u)], d.segment_of(u),
                   tuple((f, str(tmp / "wav" / f"{perturbed_id(u, f)}.flac")) for f in factors if f != 1.0))
             for u in d.utts]
    nj = max(1, min(nj, len(items)))
    tasks = [(it, sample_rate, allow_pipes) for it in items]
    desc = f"speed perturbation {dst.name}"
    if nj == 1:
        for task in progress(tasks, total=len(tasks), desc=desc):
            _perturb_task(task)
    else:
        # fork: the workers inherit the loaded modules; results are files, so order does not matter.
        with mp.get_context("fork").Pool(nj, initializer=_init_worker) as pool:
            for _ in progress(pool.imap_unordered(_perturb_task, tasks, chunksize=4), total=len(tasks), desc=desc):
                pass
    out = perturbed_data_dir(d, factors, wav_dir)
    write_data_dir(tmp, out)
    remove_tree(dst)
    tmp.rename(dst)
    mark_done(dst)
    log.info("%s: %d utterances (%s x %d), %d speakers", dst, len(out.utt2spk), "/".join(f"{f:g}" for f in factors),
             len(d.utts), len(set(out.utt2spk.values())))
    return out
