"""Labelled frames of a data set: its feature store and a label store, checked to agree.

Training, its dev metrics and frame-accuracy evaluation all read a set this way: the
utterances present in both stores (failed alignments have no labels), with equal frame counts,
and labels made from features with the same config fingerprint.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asrkd.data.datadir import feats_dir
from asrkd.errors import AsrkdError
from asrkd.framestore import FrameStore

log = logging.getLogger("asrkd.data.labelled")


def open_labelled_frames(feats_path: Path, labels_dir: Path) -> tuple[FrameStore, FrameStore, list[str]]:
    """Feature store (``feats_path`` = data dir or its ``feats/``) and label store, and their
    common utterances (sorted), checked to agree in frame counts and feature config."""
    feats = FrameStore(feats_dir(feats_path))
    labels = FrameStore(Path(labels_dir))
    if "num_classes" not in labels.attrs:
        raise AsrkdError(f"label store {labels_dir} has no num_classes attribute")
    ffp = feats.attrs.get("fingerprint")
    lfp = labels.attrs.get("feats_fingerprint")
    if ffp and lfp and ffp != lfp:
        raise AsrkdError(
            f"labels {labels_dir} were made from features with config fingerprint {lfp[:12]}, "
            f"but {feats_path} has {ffp[:12]}; realign or use the matching features"
        )
    utts = sorted(set(feats.keys()) & set(labels.keys()))
    if not utts:
        raise AsrkdError(f"no utterance is in both {feats_path} and {labels_dir}")
    skipped = len(set(feats.keys()) - set(utts))
    if skipped:
        log.info("%s: %d of %d utterances have no labels (failed alignment); using %d",
                 feats_path, skipped, len(feats), len(utts))
    bad = [u for u in utts if feats.num_frames(u) != labels.num_frames(u)]
    if bad:
        raise AsrkdError(
            f"{len(bad)} utterance(s) have different frame counts in {feats_path} and {labels_dir}, "
            f"e.g. {bad[0]}: {feats.num_frames(bad[0])} vs {labels.num_frames(bad[0])}"
        )
    return feats, labels, utts
