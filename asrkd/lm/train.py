"""The ``asrkd train-lm`` step: LM text + training transcripts -> ``lm.arpa`` + ``lm.json``.

Inputs: plain-text files (one sentence per line, UTF-8, gzip allowed) and training data
directories (their ``text``); every line goes through :func:`asrkd.text.normalize_text`, the
one normaliser, so the LM's words are spelled as the transcripts are. Dev and test data
directories are only evaluated (perplexity and OOV rate, :mod:`asrkd.lm.evaluate`): a training
input that is one of them, shares an utterance id with one of them, or is a data directory's
``text`` given as a plain file (its ids would become words) is refused. The share of dev/test
sentences found verbatim in the LM text is recorded and warned about: an LM that has seen the
test sentences makes a WER that means nothing.

Vocabulary (an open vocabulary): every word of the inputs, or with ``max_vocab`` every word of
the training transcripts plus the LM text's most frequent others; ``<unk>`` stands for the rest
(words outside a capped vocabulary are counted as ``<unk>``; otherwise ``<unk>`` only gets the
uniform share of the unigram level). The word loop (a grammar for yes/no and digits) has a
closed vocabulary: the input words, no ``<unk>``.

Outputs in ``OUT``: ``lm.arpa``, ``lm.json`` (sizes, discounts, dev/test perplexity and OOV
rate, with and without pruning, inputs with checksums, fingerprint), ``config.yaml``, then
``.done``. A complete ``OUT`` is skipped when its fingerprint (settings + input checksums)
matches and refused when it does not, unless ``force``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

from asrkd.config import save_config, to_dict
from asrkd.data.datadir import read_table
from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_json, clear_done, is_done, mark_done, read_json, sha256_file
from asrkd.lm.arpa import write_arpa
from asrkd.lm.counts import count_ngrams, encode
from asrkd.lm.evaluate import score_text
from asrkd.lm.kneser_ney import estimate_kneser_ney, word_loop
from asrkd.lm.model import BOS, EOS, UNK, BackoffLM
from asrkd.lm.prune import prune
from asrkd.text import normalize_text

log = logging.getLogger("asrkd.lm.train")

ARPA_NAME = "lm.arpa"
JSON_NAME = "lm.json"
LM_FORMAT = "asrkd-word-lm"


@dataclass(frozen=True)
class LMConfig:
    RANGES: ClassVar[dict[str, str]] = {"order": "[1, 6]", "max_vocab": "[0, inf)", "prune_threshold": "[0, inf)",
                                        "max_ngrams": "[0, inf)"}
    kind: Literal["kneser-ney", "word-loop"] = "kneser-ney"  # word-loop: a grammar, any sequence of the input words, all equally likely
    order: int = 3  # n-gram order (kneser-ney), 1..6
    max_vocab: int = 0  # vocabulary cap: every training-transcript word plus the LM text's most frequent others; 0: every word
    cutoffs: tuple[int, ...] = ()  # count cut-offs from order 2 up: drop n-grams seen at most c times (the last value repeats); (): none
    prune_threshold: float = 0.0  # relative-entropy pruning (Stolcke; SRILM -prune): drop n-grams whose removal raises perplexity by less than this fraction; 0: off
    max_ngrams: int = 0  # prune (relative entropy) until at most this many n-grams remain, all orders together; 0: no size target


@dataclass(frozen=True)
class LMInputs:
    texts: tuple[Path, ...] = ()  # plain-text files, one sentence per line
    train_dirs: tuple[Path, ...] = ()  # training data directories (their text)
    dev: Path | None = None  # data directory evaluated as dev (never trained on)
    test: Path | None = None  # data directory evaluated as test (never trained on)


# ---- reading -------------------------------------------------------------------------------
def read_text_file(path: Path) -> list[list[str]]:
    """Normalised word lists of the non-empty lines of a plain-text file (gzip allowed)."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"LM text not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise AsrkdError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    out = []
    for line in lines:
        words = normalize_text(line).split()
        if words:
            out.append(words)
    return out


def read_transcripts(data_dir: Path) -> list[list[str]]:
    """Normalised word lists of a data directory's ``text`` (empty transcripts skipped)."""
    table = read_table(Path(data_dir) / "text", allow_empty_value=True)
    return [ws for ws in (normalize_text(t).split() for t in table.values()) if ws]


def check_inputs(inputs: LMInputs) -> None:
    """Refuse inputs that would train the LM on dev or test (see module docstring)."""
    if not inputs.texts and not inputs.train_dirs:
        raise AsrkdError("no LM training text: give --text and/or --train-data")
    held_out = {name: Path(d) for name, d in (("dev", inputs.dev), ("test", inputs.test)) if d is not None}
    held_ids = {}
    for name, d in held_out.items():
        if not (d / "text").is_file():
            raise AsrkdError(f"{name} data directory {d} has no text")
        held_ids[name] = set(read_table(d / "text", allow_empty_value=True))
    for t in inputs.texts:
        if (Path(t).parent / "utt2spk").is_file():
            raise AsrkdError(f"{t} is a data directory's text (its folder has utt2spk): "
                             "give the directory with --train-data")
        for name, d in held_out.items():
            if Path(t).resolve() == (d / "text").resolve():
                raise AsrkdError(f"{t} is the {name} transcript: an LM is never trained on {name}")
    for d in inputs.train_dirs:
        for name, h in held_out.items():
            if Path(d).resolve() == h.resolve():
                raise AsrkdError(f"{d} is the {name} data directory: an LM is never trained on {name}")
        ids = set(read_table(Path(d) / "text", allow_empty_value=True))
        for name, hid in held_ids.items():
            common = ids & hid
            if common:
                raise AsrkdError(f"{d} shares {len(common)} utterance(s) with {name} (e.g. {min(common)}): "
                                 f"an LM is never trained on {name}")


def fingerprint(cfg: LMConfig, inputs: LMInputs) -> str:
    """sha256 of the settings and the content of every input (dev/test included: the
    evaluation is part of the output)."""
    files = [("text", p, Path(p)) for p in inputs.texts]
    files += [("train", d, Path(d) / "text") for d in inputs.train_dirs]
    files += [(n, d, Path(d) / "text") for n, d in (("dev", inputs.dev), ("test", inputs.test)) if d is not None]
    payload = {"config": to_dict(cfg), "inputs": [[role, sha256_file(f)] for role, _, f in files]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_vocab(text: Sequence[Sequence[str]], transcripts: Sequence[Sequence[str]], max_vocab: int) -> list[str]:
    """``<unk> <s> </s>`` then the kept words, sorted (see module docstring)."""
    counts = Counter(w for s in text for w in s)
    counts.update(w for s in transcripts for w in s)
    words = set(counts)
    if 0 < max_vocab < len(words):
        must = {w for s in transcripts for w in s}
        if len(must) > max_vocab:
            log.warning("the training transcripts have %d words, more than max_vocab %d: all kept",
                        len(must), max_vocab)
        others = sorted((w for w in words if w not in must), key=lambda w: (-counts[w], w))
        words = must | set(others[:max(0, max_vocab - len(must))])
    return [UNK, BOS, EOS] + sorted(words)


# ---- the step -----------------------------------------------------------------------------
def estimate(cfg: LMConfig, text: Sequence[Sequence[str]], transcripts: Sequence[Sequence[str]]) -> tuple[BackoffLM, dict[str, Any]]:
    """The unpruned LM of the training sentences and what to record about it."""
    if cfg.kind == "word-loop":
        lm = word_loop([w for s in [*text, *transcripts] for w in s])
        return lm, {}
    if any(c < 0 for c in cfg.cutoffs):
        raise AsrkdError(f"LM count cut-offs must be >= 0, got {list(cfg.cutoffs)}")
    vocab = build_vocab(text, transcripts, cfg.max_vocab)
    index = {w: i for i, w in enumerate(vocab)}
    enc = encode([*text, *transcripts], index, index[BOS], index[EOS], index[UNK])
    tables = count_ngrams(enc, len(vocab), cfg.order)
    lm, discounts = estimate_kneser_ney(tables, vocab)
    info = {
        "discounts": [list(d.d) for d in discounts],
        "discount_fallback": [d.fallback for d in discounts],
        "counts_of_counts": [list(d.counts_of_counts) for d in discounts],
        "training_tokens": int(len(enc.tokens) - 2 * enc.num_sentences),
        "raw_counts": [t.count for t in tables],
    }
    return lm, info


def train_lm(cfg: LMConfig, inputs: LMInputs, out_dir: Path, force: bool = False) -> dict[str, Any]:
    """Run the step (see module docstring); returns the content of ``lm.json``."""
    out_dir = Path(out_dir)
    check_inputs(inputs)
    fp = fingerprint(cfg, inputs)
    if is_done(out_dir) and not force:
        old = read_json(out_dir / JSON_NAME) if (out_dir / JSON_NAME).is_file() else {}
        if old.get("fingerprint") == fp:
            log.info("%s is complete; skipping (use --force to redo)", out_dir)
            return old
        raise AsrkdError(f"{out_dir} holds an LM made from other inputs or settings (--force replaces it)")
    clear_done(out_dir)
    t0 = time.monotonic()
    text = [s for p in inputs.texts for s in read_text_file(p)]
    transcripts = [s for d in inputs.train_dirs for s in read_transcripts(d)]
    held = {n: read_transcripts(d) for n, d in (("dev", inputs.dev), ("test", inputs.test)) if d is not None}
    t_read = time.monotonic() - t0
    log.info("LM text: %d sentences from %d file(s), %d training transcripts", len(text),
             len(inputs.texts), len(transcripts))

    t1 = time.monotonic()
    full, info = estimate(cfg, text, transcripts)
    raw_counts = info.pop("raw_counts", None)
    lm, threshold = prune(full, threshold=cfg.prune_threshold, cutoffs=cfg.cutoffs,
                          max_ngrams=cfg.max_ngrams, raw_counts=raw_counts)
    t_est = time.monotonic() - t1
    write_arpa(lm, out_dir / ARPA_NAME)

    result: dict[str, Any] = {
        "format": LM_FORMAT,
        "arpa": ARPA_NAME,
        "arpa_sha256": sha256_file(out_dir / ARPA_NAME),
        "fingerprint": fp,
        "config": to_dict(cfg),
        "order": lm.order,
        "vocab_size": sum(1 for w in lm.vocab if lm.in_vocab(w) and w not in (BOS, EOS)),
        "open_vocabulary": lm.unk >= 0,
        "ngrams": lm.num_ngrams(),
        "prune_threshold_used": threshold,
        "inputs": {
            "texts": [{"path": str(p), "sha256": sha256_file(Path(p))} for p in inputs.texts],
            "train_data": [str(d) for d in inputs.train_dirs],
            "dev": str(inputs.dev) if inputs.dev else None,
            "test": str(inputs.test) if inputs.test else None,
            "text_sentences": len(text),
            "transcript_sentences": len(transcripts),
            "words": sum(len(s) for s in text) + sum(len(s) for s in transcripts),
        },
        **info,
    }
    seen = {" ".join(s) for s in [*text, *transcripts]}
    for name, sents in held.items():
        score = score_text(lm, sents)
        result[name] = score.to_dict()
        overlap = sum(" ".join(s) in seen for s in sents)
        result[name]["sentences_in_lm_text"] = overlap
        log.info("%s: perplexity %s (OOVs excluded), OOV rate %s (%d of %d words)", name,
                 _fmt(score.ppl), _pct(score.oov_rate), score.oovs, score.words)
        if overlap and cfg.kind != "word-loop":
            log.warning("%s: %d of %d sentences occur verbatim in the LM training text", name,
                        overlap, len(sents))
    if lm is not full:
        result["unpruned"] = {"ngrams": full.num_ngrams(),
                              **{n: score_text(full, s).to_dict() for n, s in held.items()}}
    result["seconds"] = {"read": round(t_read, 3), "estimate_and_prune": round(t_est, 3),
                         "total": round(time.monotonic() - t0, 3)}
    save_config(cfg, out_dir / "config.yaml")
    atomic_write_json(out_dir / JSON_NAME, result)
    mark_done(out_dir, {"fingerprint": fp})
    log.info("LM: %s n-grams -> %s (%.2f s)", result["ngrams"], out_dir / ARPA_NAME, result["seconds"]["total"])
    return result


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"
