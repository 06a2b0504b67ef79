"""Word -> unit tokenizers for the label inventory (used by :mod:`asrkd.lang.inventory`).

Three unit types:

- ``sentencepiece``: pieces of a SentencePiece model trained on the training transcripts. A
  piece that starts a word carries SentencePiece's ``▁`` marker, so a unit sequence maps back to
  words by itself (``units_to_words``).
- ``lexicon``: phones from a pronunciation lexicon in CMUdict format (``WORD  P1 P2 ...``, one
  pronunciation per line, alternatives as ``WORD(2)``, ``;;;`` comments). The first
  pronunciation of a word is used; stress digits are stripped when ``strip_stress`` is set
  (``AH0`` -> ``AH``). A word missing from the lexicon is an error for that utterance.
- ``grapheme``: the characters of each word (letters, digits, apostrophes). There is no
  word-boundary unit: words are separated only by the optional silence, and the word each unit
  belongs to is kept by the alignment graph (``node_word``), so alignments map back to words
  without a marker. ``units_to_words`` for graphemes therefore needs the word lengths.

Every tokenizer returns, per word, the list of unit names of that word.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from asrkd.errors import AsrkdError

SPM_WORD_MARK = "\u2581"  # SentencePiece's word-start marker "▁"
_STRESS = re.compile(r"(?<=[A-Za-z])[0-2]$")


class Tokenizer(Protocol):
    def word_units(self, words: list[str]) -> list[list[str]]:
        """Unit names per word of the (normalised) transcript ``words``."""
        ...


class GraphemeTokenizer:
    def word_units(self, words: list[str]) -> list[list[str]]:
        return [list(w) for w in words]


class LexiconTokenizer:
    def __init__(self, lexicon: dict[str, list[str]]):
        self.lexicon = lexicon

    def word_units(self, words: list[str]) -> list[list[str]]:
        out = []
        for w in words:
            pron = self.lexicon.get(w)
            if pron is None:
                raise AsrkdError(f"word {w!r} is not in the lexicon")
            out.append(pron)
        return out


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


def read_lexicon(path: Path, strip_stress: bool = True) -> dict[str, list[str]]:
    """CMUdict-format lexicon -> {WORD: [phones]} (first pronunciation of each word wins)."""
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"lexicon not found: {path}")
    lex: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise AsrkdError(f"{path}:{lineno}: expected 'WORD PHONE ...', got {line!r}")
        word = re.sub(r"\(\d+\)$", "", parts[0]).upper()
        phones = [_STRESS.sub("", p) if strip_stress else p for p in parts[1:]]
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
