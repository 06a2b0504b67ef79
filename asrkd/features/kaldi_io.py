"""Kaldi interop for features: export a frame store as ``ark`` + ``scp``, import Kaldi features.

Export writes ``OUT.ark`` (binary Kaldi matrices, ``<utt> \\0B FM ...``) and ``OUT.scp`` lines
``<utt> <abs path of OUT.ark>:<byte offset>``, the ``ark:offset`` form every Kaldi tool reads
(``copy-feats scp:OUT.scp ark,t:-``). Import reads an ``scp`` or ``ark`` with kaldiio (so
compressed matrices work too), checks the utterance ids against the data directory and writes
the frame store, ``utt2num_frames`` and ``cmvn.json`` exactly as ``compute-feats`` would.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterator

import kaldiio
import numpy as np

from asrkd.features.cmvn import CmvnAccumulator, write_cmvn
from asrkd.data.datadir import feats_dir, read_data_dir, write_num_frames
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_text, is_done, remove_tree
from asrkd.framestore import FrameStore, PartWriter, finalize_store
from asrkd.logs import progress

log = logging.getLogger("asrkd.features.kaldi_io")

def export_feats(data_dir: Path, out_prefix: Path) -> tuple[Path, Path]:
    """Write ``data_dir/feats`` as ``out_prefix.ark`` + ``out_prefix.scp``; returns their paths."""
    store = FrameStore(feats_dir(data_dir))
    ark = Path(f"{out_prefix}.ark").resolve()
    scp = Path(f"{out_prefix}.scp")
    ark.parent.mkdir(parents=True, exist_ok=True)
    tmp = ark.with_name(f".{ark.name}.tmp{os.getpid()}")
    lines = []
    try:
        with open(tmp, "wb") as f:
            for utt in progress(store.keys(), total=len(store), desc="export-feats"):
                # Kaldi's scp offset points just past "<utt> ", at the binary marker.
                offset = f.tell() + len(utt.encode("utf-8")) + 1
                kaldiio.save_ark(f, {utt: np.asarray(store[utt], dtype=np.float32)})
                lines.append(f"{utt} {ark}:{offset}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, ark)
    finally:
        if tmp.exists():
            tmp.unlink()
    atomic_write_text(scp, "".join(lines))
    log.info("exported %d utterances to %s (+ %s)", len(lines), ark, scp)
    return ark, scp


def _read_kaldi(src: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, matrix) pairs from an ``.scp`` (ark:offset lines) or an ``.ark`` file."""
    try:
        if src.suffix == ".scp":
            table = kaldiio.load_scp(str(src))
            for utt in table:
                yield utt, table[utt]
        else:
            yield from kaldiio.load_ark(str(src))
    except AsrkdError:
        raise
    except Exception as e:  # kaldiio raises plain ValueError/OSError on malformed input
        raise AsrkdError(f"cannot read Kaldi features from {src}: {type(e).__name__}: {e}") from None


def import_feats(src: Path, data_dir: Path, force: bool = False) -> FrameStore:
    """Import Kaldi features ``src`` (``.scp`` or ``.ark``) into ``data_dir/feats``.

    Every utterance id must belong to ``data_dir``; utterances of the data directory without
    features are allowed (later stages use the intersection) and counted in the log.
    Also writes ``utt2num_frames`` and ``cmvn.json``. Rows are stored as float32.
    """
    src, data_dir = Path(src), Path(data_dir)
    if not src.is_file():
        raise AsrkdError(f"Kaldi feature file not found: {src}")
    data = read_data_dir(data_dir)
    out_dir = feats_dir(data_dir)
    if is_done(out_dir) and not force:
        raise AsrkdError(f"{out_dir} already holds a complete feature store; use --force to replace it")
    # Read into a side directory first: a bad source file leaves an existing store untouched.
    tmp_dir = data_dir / ".feats.importing"
    remove_tree(tmp_dir)
    h = hashlib.sha256()
    counts: dict[str, int] = {}
    cmvn: CmvnAccumulator | None = None
    writer: PartWriter | None = None
    try:
        for utt, mat in progress(_read_kaldi(src), desc="import-feats"):
            if utt not in data.utt2spk:
                raise AsrkdError(f"{src}: utterance {utt!r} is not in {data_dir}/utt2spk")
            mat = np.asarray(mat, dtype=np.float32)
            if mat.ndim != 2 or mat.shape[0] == 0:
                raise AsrkdError(f"{src}: utterance {utt}: expected a non-empty matrix, got shape {mat.shape}")
            if writer is None:
                writer = PartWriter(tmp_dir, "0", np.float32, (mat.shape[1],))
                cmvn = CmvnAccumulator(mat.shape[1])
            writer.add(utt, mat)  # checks the dimension and duplicate ids
            assert cmvn is not None
            cmvn.add(data.utt2spk[utt], mat)
            counts[utt] = mat.shape[0]
            h.update(utt.encode("utf-8") + b"\n" + mat.tobytes())
        if writer is None:
            raise AsrkdError(f"{src}: no features in the file")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        remove_tree(tmp_dir)
        raise
    remove_tree(out_dir)
    os.replace(tmp_dir, out_dir)
    missing = len(data.utt2spk) - len(counts)
    if missing:
        log.warning("%d of %d utterances of %s have no imported features", missing, len(data.utt2spk), data_dir)
    write_num_frames(data_dir, counts)
    assert cmvn is not None
    write_cmvn(data_dir, cmvn.to_json())
    attrs = {
        # No asrkd FeatureConfig made these: record where they came from; the fingerprint
        # names the content, so labels/caches made on them refuse any other features.
        "feature_config": {"imported_from": str(src.resolve()), "dim": writer.shape[0]},
        "fingerprint": h.hexdigest(),
    }
    store = finalize_store(out_dir, np.float32, writer.shape, attrs, expected_frames=counts)
    log.info("imported %d utterances, %d frames from %s", len(store), store.total_frames, src)
    return store
