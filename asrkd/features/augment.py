"""A larger transfer set for distillation: a data dir's frames plus augmented copies.

The student can only imitate the ensemble where it sees the ensemble's outputs; on a small
training set the teachers' posteriors there are close to memorised labels (on LJ Speech the
ensemble is right on 80% of training frames against 65% on dev). Augmented copies of the
training features give the teachers new inputs to label and the student more of the ensemble's
behaviour to copy. Each copy of an utterance gets, in the feature (log-mel) domain:

- Gaussian noise of ``noise_sd`` x the per-bin standard deviation of the source set's CMVN stats;
- one frequency mask of 0..``max_mask_bins`` adjacent bins set to their mean (SpecAugment-like).

Frame counts and timing are unchanged, so the hard labels carry over exactly and a baseline can
be trained on the same data. Copies are named ``<utt>-aug<k>``; the source utterances are kept.
The output holds ``feats/``, ``labels/<name>/``, ``utt2num_frames``, ``augment.json`` (the settings;
written first, so a killed run is recognised and redone), ``utt2spk`` (when the source
has one) and the source's ``cmvn.json``, so every model normalises its input as the original
training set does. Each copy's randomness depends only on (seed, k, utterance id): the result
does not depend on the order or subset of utterances.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from asrkd.features.cmvn import load_cmvn, mean_std
from asrkd.data.datadir import read_num_frames, read_table, write_num_frames, write_table
from asrkd.errors import AsrkdError
from asrkd.fileio import DONE_MARKER, atomic_write_json, atomic_write_text, is_done, mark_done, read_json, remove_tree
from asrkd.framestore import FrameStore, PartWriter, finalize_store
from asrkd.logs import progress

log = logging.getLogger("asrkd.features.augment")


def augment_frames(x: np.ndarray, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator,
                   noise_sd: float, max_mask_bins: int) -> np.ndarray:
    """``x: (frames, F)`` -> an augmented copy ``(frames, F)`` float32 (noise, then one frequency mask)."""
    F = x.shape[1]
    out = x + rng.normal(0.0, noise_sd, x.shape).astype(np.float32) * std.astype(np.float32)
    width = int(rng.integers(0, min(max_mask_bins, F) + 1))
    f0 = int(rng.integers(0, F - width + 1))
    out[:, f0:f0 + width] = mean[f0:f0 + width].astype(np.float32)
    return out


def _rng(seed: int, copy: int, utt: str) -> np.random.Generator:
    return np.random.default_rng([seed, copy, zlib.crc32(utt.encode())])


def augment_data_dir(src: Path, labels: Path, out: Path, copies: int, seed: int = 0, noise_sd: float = 0.4,
                     max_mask_bins: int = 8, force: bool = False) -> dict[str, int]:
    """Write ``out`` = the labelled utterances of ``src`` plus ``copies`` augmented copies each.

    ``src``: a data dir with ``feats/`` and ``cmvn.json``; ``labels``: its label store (the name
    of that directory is kept: ``out/labels/<name>``). Returns ``{"utts", "frames"}`` written.
    """
    src, labels, out = Path(src), Path(labels), Path(out)
    if copies < 1:
        raise AsrkdError(f"augment: --copies must be >= 1, got {copies}")
    if noise_sd < 0 or max_mask_bins < 0:
        raise AsrkdError("augment: noise_sd and max_mask_bins must be >= 0")
    settings = {"copies": copies, "seed": seed, "noise_sd": noise_sd, "max_mask_bins": max_mask_bins}
    if is_done(out) and not force:
        done = read_json(out / DONE_MARKER)  # mark_done keeps the settings
        made = {k: done[k] for k in settings if k in done}
        if made != settings:
            raise AsrkdError(f"{out} was made with {made}, not {settings}; --force redoes it")
        log.info("%s is complete; skipping (--force to redo)", out)
        done_counts = read_num_frames(out)
        return {"utts": len(done_counts), "frames": sum(done_counts.values())}
    feats, lab = FrameStore(src / "feats"), FrameStore(labels)
    mean, std = mean_std(load_cmvn(src)["global"])
    if len(mean) != feats.shape[0]:
        raise AsrkdError(f"{src}: cmvn.json has {len(mean)} dims, the features {feats.shape[0]}")
    utts = sorted(set(feats.keys()) & set(lab.keys()))
    if not utts:
        raise AsrkdError(f"{src}: no utterance has both features and labels in {labels}")
    missing = len(set(feats.keys()) - set(lab.keys()))
    if missing:
        log.info("%d utterance(s) of %s have no labels and are left out", missing, src)
    for u in utts:
        if feats.num_frames(u) != lab.num_frames(u):
            raise AsrkdError(f"{u}: {feats.num_frames(u)} feature frames but {lab.num_frames(u)} labels")
    if out.resolve() == src.resolve() or src.resolve().is_relative_to(out.resolve()):
        raise AsrkdError(f"augment: the output {out} would overwrite the source {src}")
    if out.exists():
        # our own unfinished output (a killed run: augment.json without .done) is redone; any
        # other existing directory only with --force
        if not force and not (out / "augment.json").is_file():
            raise AsrkdError(f"{out} exists and is not an augment-feats output; --force overwrites it")
        remove_tree(out)
    spec = {"source": str(src), **settings}
    out.mkdir(parents=True)
    atomic_write_json(out / "augment.json", spec)
    counts: dict[str, int] = {}
    lab_dir = out / "labels" / labels.name
    with PartWriter(out / "feats", "0", "float32", feats.shape) as fw, \
            PartWriter(lab_dir, "0", "int32", ()) as lw:
        for u in progress(utts, total=len(utts), desc="augment"):
            x, y = np.asarray(feats[u], dtype=np.float32), np.asarray(lab[u], dtype=np.int32)
            fw.add(u, x)
            lw.add(u, y)
            counts[u] = len(x)
            for k in range(1, copies + 1):
                name = f"{u}-aug{k}"
                fw.add(name, augment_frames(x, mean, std, _rng(seed, k, u), noise_sd, max_mask_bins))
                lw.add(name, y)
                counts[name] = len(x)
    finalize_store(out / "feats", "float32", feats.shape, {**feats.attrs, "augment": spec}, counts)
    finalize_store(lab_dir, "int32", (), lab.attrs, counts)
    write_num_frames(out, counts)
    if (src / "utt2spk").is_file():
        spk = read_table(src / "utt2spk")
        write_table(out / "utt2spk", {u: spk[u.rsplit("-aug", 1)[0] if u not in spk else u] for u in counts})
    atomic_write_text(out / "cmvn.json", (src / "cmvn.json").read_text())
    mark_done(out, spec)
    frames = sum(counts.values())
    log.info("%s: %d utterances (%d source x %d), %d frames", out, len(counts), len(utts), copies + 1, frames)
    return {"utts": len(counts), "frames": frames}
