"""Text for the word LM of a synthetic corpus: its source text without the corpus's sentences.

``python -m data_prep.synth lm-text --corpus OUT`` writes ``OUT/lm_text.txt``: every sentence of
the source text the corpus was drawn from (the KJV, or the ``--text-file`` it was made with, as
``OUT/synth_config.json`` records), split after ``.``, ``?`` and ``!`` as the corpus splits it and
normalised by :func:`asrkd.text.normalize_text`, one per line, in text order, except every
sentence that the corpus uses: its plan's train, dev and test sentences (recomputed from the
preset and seed) and every line of ``OUT/{train,dev,test}/text``. No dev or test sentence can
reach the LM this way; the training sentences come back through the recipe's training
transcripts (``asrkd train-lm --train-data data/train``), so they are counted once. The file
depends only on the corpus settings and the source text: the same corpus gives the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from asrkd.fileio import read_json, write_text_if_changed
from asrkd.text import normalize_text

from .corpus import SPLITS, SynthOptions, sentence_pools, source_text
from .text_source import raw_sentences

log = logging.getLogger("asrkd.synth")

LM_TEXT = "lm_text.txt"


def corpus_sentences(out_dir: Path, opts: SynthOptions, text: str) -> dict[str, set[str]]:
    """Normalised sentences of each split: the plan's and those of the written data dirs."""
    pools = sentence_pools(opts, text)
    used = {split: {s.transcript for s in pools[split]} for split in SPLITS}
    for split in SPLITS:
        table = Path(out_dir) / split / "text"
        if table.is_file():
            used[split] |= {normalize_text(t) for t in read_table(table, allow_empty_value=True).values()}
    return used


def lm_sentences(text: str, exclude: set[str]) -> list[str]:
    """Normalised sentences of ``text`` (paragraph = line), in order, without ``exclude``."""
    out = []
    for raw in raw_sentences(text):
        s = normalize_text(raw)
        if s and s not in exclude:
            out.append(s)
    return out


def write_lm_text(out_dir: Path) -> dict[str, Any]:
    """Write ``out_dir/lm_text.txt`` for the corpus in ``out_dir``; returns counts."""
    out_dir = Path(out_dir)
    cfg_path = out_dir / "synth_config.json"
    if not cfg_path.is_file():
        raise AsrkdError(f"{out_dir} is no synthetic corpus (no synth_config.json)")
    cfg = read_json(cfg_path)
    opts = SynthOptions(preset=cfg["preset"], seed=cfg["seed"], text_file=cfg.get("text_file", ""))
    text = source_text(opts)
    used = corpus_sentences(out_dir, opts, text)
    exclude = set().union(*used.values())
    sents = lm_sentences(text, exclude)
    if not write_text_if_changed(out_dir / LM_TEXT, "".join(s + "\n" for s in sents)):
        log.info("%s: unchanged, kept as it is", out_dir / LM_TEXT)
    info = {"sentences": len(sents), "words": sum(len(s.split()) for s in sents),
            "excluded_sentences": {split: len(v) for split, v in used.items()}}
    log.info("LM text: %d sentences, %d words (corpus sentences left out: %s) -> %s", info["sentences"],
             info["words"], info["excluded_sentences"], out_dir / LM_TEXT)
    return info
