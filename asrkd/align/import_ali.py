"""Frame labels from outside (``asrkd import-ali``): Kaldi alignments and TIMIT segmentations.

Sources:

- ``kaldi-text``: ``ali-to-pdf`` text output, ``<utt> <pdf> <pdf> ...`` (one id per frame);
- ``kaldi-ark``: the same as a Kaldi binary/text archive, read with kaldiio (int vectors);
- ``timit-phn``: TIMIT ``.PHN`` files (``<start_sample> <end_sample> <phone>`` at 16 kHz). Each
  frame takes the phone whose segment contains its centre (:func:`asrkd.framing.frame_time`);
  the frames of a phone segment are split evenly over its unit's HMM states. Phones map onto
  the lang's units through ``phone_map`` (TIMIT's ``h#``, ``pau``, ``epi`` default to silence).

Frame-count mismatches against ``utt2num_frames`` follow ``mismatch``: ``error`` refuses any
difference; ``trim`` accepts up to 2 frames (cuts surplus frames at the end, repeats the last
label for missing ones) and logs how many utterances it touched.

:func:`import_labels` is the whole step (``DATA/labels/NAME``, skipped when complete).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from asrkd.align.labels import labels_dir, write_labels
from asrkd.data.datadir import read_num_frames, read_table
from asrkd.errors import AsrkdError
from asrkd.framing import FrameSpec, frame_time
from asrkd.fileio import is_done, sha256_file
from asrkd.framestore import FrameStore
from asrkd.lang.inventory import Lang, load_lang

log = logging.getLogger("asrkd.align.import_ali")

MAX_TRIM = 2  # frames accepted by the "trim" policy
TIMIT_SILENCE = ("h#", "pau", "epi")


def read_kaldi_text(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"alignment file not found: {path}")
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            yield parts[0], np.asarray([int(x) for x in parts[1:]], dtype=np.int64)
        except ValueError:
            raise AsrkdError(f"{path}:{lineno}: expected '<utt> <int> <int> ...'") from None


def read_kaldi_ark(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    import kaldiio

    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"alignment archive not found: {path}")
    for utt, arr in kaldiio.load_ark(str(path)):
        a = np.asarray(arr)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise AsrkdError(f"{path}: {utt}: expected an integer vector, got {a.dtype} {a.shape}")
        yield utt, a.astype(np.int64)


def read_phn(path: Path) -> list[tuple[int, int, str]]:
    """TIMIT ``.PHN`` -> [(start_sample, end_sample, phone)]."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"TIMIT segmentation not found: {path}")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise AsrkdError(f"{path}:{lineno}: expected '<start> <end> <phone>', got {line!r}")
        out.append((int(parts[0]), int(parts[1]), parts[2]))
    return out


def phn_to_classes(
    segs: list[tuple[int, int, str]], num_frames: int, lang: Lang, phone_map: dict[str, str],
    spec: FrameSpec = FrameSpec(), sample_rate: int = 16000,
) -> np.ndarray:
    """Class id per frame ``(num_frames,)`` from a phone segmentation (see module docstring)."""
    centres = np.asarray(frame_time(np.arange(num_frames), spec)) * sample_rate
    ends = np.asarray([e for _, e, _ in segs], dtype=np.float64)
    seg_of = np.minimum(np.searchsorted(ends, centres, side="right"), len(segs) - 1)
    out = np.empty(num_frames, dtype=np.int64)
    for k, (_, _, ph) in enumerate(segs):
        frames = np.flatnonzero(seg_of == k)
        if frames.size == 0:
            continue
        name = phone_map.get(ph, ph)
        if name in TIMIT_SILENCE:
            name = lang.units[lang.silence_unit]
        u = lang.unit_id(name)
        n = int(lang.unit_num_states[u])
        out[frames] = lang.unit_offset[u] + np.arange(frames.size) * n // frames.size
    return out


def fit_frames(utt: str, labels: np.ndarray, expected: int, mismatch: str) -> tuple[np.ndarray, bool]:
    """Apply the mismatch policy -> (labels of length ``expected``, trimmed?)."""
    d = labels.shape[0] - expected
    if d == 0:
        return labels, False
    if mismatch == "trim" and abs(d) <= MAX_TRIM and labels.size:
        if d > 0:
            return labels[:expected], True
        return np.concatenate([labels, np.repeat(labels[-1:], -d)]), True
    raise AsrkdError(
        f"{utt}: {labels.shape[0]} label frames but utt2num_frames says {expected}"
        + (" (more than the 2 frames --mismatch trim accepts)" if mismatch == "trim" else
           " (use --mismatch trim to accept differences of up to 2 frames)")
    )


def fit_all(
    source: Iterator[tuple[str, np.ndarray]], expected: dict[str, int], mismatch: str
) -> tuple[dict[str, np.ndarray], dict[str, str], int, int]:
    """-> (labels {utt: (frames,)}, failed {utt: reason}, trimmed count, ignored count)."""
    labels: dict[str, np.ndarray] = {}
    trimmed = ignored = 0
    for utt, a in source:
        if utt not in expected:
            ignored += 1
            continue
        labels[utt], t = fit_frames(utt, a, expected[utt], mismatch)
        trimmed += int(t)
    failed = {u: "not-in-source" for u in expected if u not in labels}
    if trimmed:
        log.warning("%d utterance(s) trimmed/padded by up to %d frames to match utt2num_frames", trimmed, MAX_TRIM)
    if ignored:
        log.warning("%d utterance(s) in the source are not in the data directory (ignored)", ignored)
    return labels, failed, trimmed, ignored


Format = Literal["kaldi-text", "kaldi-ark", "timit-phn"]


def _timit_phn_items(data_dir: Path, source: Path | None, lang: Lang, phone_map: Path | None,
                     expected: dict[str, int]) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, classes) from every utterance's TIMIT .PHN file: listed in the table ``source``
    (``<utt> <file.PHN>``), or each wav.scp path with the extension .PHN."""
    if source is not None:
        phn = read_table(source)
    else:
        if (data_dir / "segments").is_file():
            raise AsrkdError("timit-phn without a source table needs a data dir without segments")
        phn = {u: str(Path(p).with_suffix(".PHN" if Path(p).suffix.isupper() else ".phn"))
               for u, p in read_table(data_dir / "wav.scp").items()}
    pmap = read_table(phone_map) if phone_map else {}
    return ((u, phn_to_classes(read_phn(Path(p)), expected[u], lang, pmap))
            for u, p in sorted(phn.items()) if u in expected)


def import_labels(data_dir: Path, name: str, fmt: Format, source: Path | None = None, lang_dir: Path | None = None,
                  num_classes: int | None = None, phone_map: Path | None = None, mismatch: str = "error",
                  force: bool = False) -> Path:
    """Import frame labels from ``source`` (``fmt``: see the module docstring) into the label
    store ``data_dir/labels/name`` (:func:`asrkd.align.labels.write_labels`), frame counts fixed
    by ``data_dir/utt2num_frames``; ids refer to ``lang_dir`` or, without one, to an external
    inventory of ``num_classes``. A complete store of the same source, inventory and features is
    kept (skipped) unless ``force``; one of another is refused (``force`` replaces it)."""
    data_dir = Path(data_dir)
    out = labels_dir(data_dir, name)
    lang = load_lang(lang_dir) if lang_dir else None
    if fmt == "timit-phn":
        if lang is None:
            raise AsrkdError("timit-phn needs --lang (phones map onto its units)")
        origin = f"timit-phn:{source or 'wav.scp'}"
    else:
        if source is None:
            raise AsrkdError(f"{fmt} needs a source file")
        origin = f"{fmt}:{source}"
    if lang is not None:
        n_classes, lang_fp = lang.num_classes, lang.fingerprint
    elif num_classes is not None:
        n_classes, lang_fp = num_classes, f"external:{sha256_file(source)}"
    else:
        raise AsrkdError("give --lang or --num-classes (the size of the label inventory)")
    feats_fp = ""
    if is_done(data_dir / "feats"):
        feats_fp = str(FrameStore(data_dir / "feats").attrs.get("fingerprint", ""))
    want = {"num_classes": n_classes, "lang_fingerprint": lang_fp, "feats_fingerprint": feats_fp, "source": origin}
    if is_done(out) and not force:
        have = {k: FrameStore(out).attrs.get(k) for k in want}
        if have != want:
            raise AsrkdError(f"{out} holds other labels ({have}); use --force to replace it")
        log.info("%s is complete; skipping (use --force to redo)", out)
        return out
    expected = read_num_frames(data_dir)
    if fmt == "timit-phn":
        items = _timit_phn_items(data_dir, source, lang, phone_map, expected)
    else:
        items = read_kaldi_text(source) if fmt == "kaldi-text" else read_kaldi_ark(source)
    labels, failed, _, _ = fit_all(items, expected, mismatch)
    write_labels(out, sorted(labels.items()), failed, n_classes, lang_fp, feats_fp, origin, expected)
    return out
