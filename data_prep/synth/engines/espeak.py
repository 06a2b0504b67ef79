"""espeak-ng through libespeak-ng (ctypes), synchronous mode with phoneme events.

Timings come from the library's events: a WORD event carries the sample position where the
word starts and the character position of the word in the input; a PHONEME event carries the
sample position where the phoneme's sound starts (mnemonic in ``id.string``); phonemes whose
name starts with ``_`` are pauses. A phone ends where the next event's phone starts.

Conventions (README.md): the first phone of a word starts at the WORD event, which espeak-ng
places before the phoneme event by 12 ms (fricatives, vowels) up to ~35 ms (stop closures),
so a word-initial stop's closure belongs to the stop; inside a word a stop's phoneme event
comes at its release, so its closure is attributed to the preceding phone.

espeak-ng fuses an unstressed function word into the preceding one (``for the`` -> one WORD
event, phonemes ``f 3 D @2``). A fused word's phones are split off the end of the group using
the phone count of the word spoken alone by the same voice; if that leaves the first word
without a phone the utterance is dropped.
"""

from __future__ import annotations

import ctypes as C
import numpy as np

from ..reference import SIL, Synthesis, Timed, TimingError, merge_pauses, words_from_groups
from ..text_source import Sentence

_EV_LIST_TERMINATED, _EV_WORD, _EV_PHONEME = 0, 1, 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_DONT_EXIT = 0x0001, 0x8000
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_RATE, _PITCH = 1, 3


class _Id(C.Union):
    _fields_ = [("number", C.c_int), ("name", C.c_char_p), ("string", C.c_char * 8)]


class _Event(C.Structure):
    _fields_ = [
        ("type", C.c_int), ("unique_identifier", C.c_uint), ("text_position", C.c_int),
        ("length", C.c_int), ("audio_position", C.c_int), ("sample", C.c_int),
        ("user_data", C.c_void_p), ("id", _Id),
    ]


_CALLBACK = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_short), C.c_int, C.POINTER(_Event))


class Espeak:
    """One per process (the library has global state). ``voice`` names are ``<lang>+<variant>``,
    e.g. ``en-gb-scotland+f2``."""

    def __init__(self) -> None:
        self.lib = C.CDLL("libespeak-ng.so.1")
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise RuntimeError("espeak_Initialize failed")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str]] = []
        self._cb = _CALLBACK(self._callback)  # keep a reference: the library holds the pointer
        self.lib.espeak_SetSynthCallback(self._cb)
        self._count_cache: dict[tuple[str, int, int, str], int] = {}

    def _callback(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes pointers
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            e = events[i]
            name = e.id.string.decode("ascii", errors="replace") if e.type == _EV_PHONEME else ""
            self._events.append((e.type, e.text_position, e.sample, name))
            i += 1
        return 0

    def _run(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, list]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self._events

    def _phone_count(self, word: str, voice: str, rate: int, pitch: int) -> int:
        """Phones (of positive length, not pauses) of ``word`` spoken alone."""
        key = (voice, rate, pitch, word.lower())
        if key not in self._count_cache:
            audio, events = self._run(word.lower(), voice, rate, pitch)
            starts = [s for t, _, s, n in events if t == _EV_PHONEME] + [len(audio)]
            names = [n for t, _, _, n in events if t == _EV_PHONEME]
            self._count_cache[key] = sum(
                1 for n, a, b in zip(names, starts, starts[1:]) if b > a and not n.startswith("_")
            )
        return self._count_cache[key]

    def synthesize(self, sent: Sentence, voice: str, rate: int, pitch: int) -> Synthesis:
        """Speak ``sent.synth``; ``rate`` in words per minute, ``pitch`` 0-99.

        Call it in a fresh process (:func:`..isolate.run_isolated`): libespeak-ng keeps state
        between utterances, so the same input gives different audio after a different history.
        """
        audio, events = self._run(sent.synth, voice, rate, pitch)
        events = list(events)
        n = len(audio)
        sr = self.sample_rate

        def token_at(pos: int) -> int:  # text_position is 1-based characters
            for k, (a, b) in enumerate(sent.spans):
                if a <= pos - 1 < b:
                    return k
            return -1

        # Walk the events: a WORD event opens a group of phones for its token.
        groups: list[list[int]] = []  # token ids of each group (more than one if fused)
        phones: list[list] = []  # [name, start_sample, group index or -1]
        word_start: int | None = None
        orphan = False  # after a WORD event that points at no transcript word
        for etype, pos, sample, name in events:
            if etype == _EV_WORD:
                tok = token_at(pos)
                if tok < 0:  # espeak sometimes reports punctuation as a word: harmless if
                    orphan = True  # only pauses follow it
                    continue
                orphan = False
                prev = groups[-1][-1] if groups else -1
                if tok == prev:
                    continue  # a word spoken in two pieces stays one word
                if tok < prev or (tok > 0 and not groups):
                    raise TimingError("espeak word events out of order or first word missing")
                if tok > prev + 1:
                    groups[-1].extend(range(prev + 1, tok))  # fused words (see docstring)
                groups.append([tok])
                word_start = sample
            elif etype == _EV_PHONEME:
                if name.startswith("_"):
                    phones.append([SIL, sample, -1])
                    word_start = None
                    continue
                if orphan or not groups:
                    raise TimingError("espeak phoneme outside any transcript word")
                start = sample
                if word_start is not None:  # first phone of the word starts at the WORD event
                    start = min(sample, word_start)
                    word_start = None
                phones.append([name, start, len(groups) - 1])
        if not groups or not phones:
            raise TimingError("espeak produced no words")
        if groups[-1][-1] != len(sent.words) - 1:
            groups[-1].extend(range(groups[-1][-1] + 1, len(sent.words)))
        if phones[0][0] != SIL:
            phones.insert(0, [SIL, 0, -1])
        phones[0][1] = 0  # leading silence belongs to the first phone
        starts = [p[1] for p in phones] + [n]
        if any(b < a for a, b in zip(starts, starts[1:])):
            raise TimingError("espeak phone times go backwards")
        # Zero-length events (espeak's modifiers such as ';') are not phones.
        timed = [
            (Timed(p[0], a / sr, b / sr), p[2]) for p, a, b in zip(phones, starts, starts[1:]) if b > a
        ]
        word_groups: list[tuple[str, list[Timed]]] = []
        for g, toks in enumerate(groups):
            items = [t for t, gi in timed if gi == g]
            # Split fused words off the end, each by its spoken-alone phone count.
            pieces: list[tuple[str, list[Timed]]] = []
            for tok in reversed(toks[1:]):
                k = self._phone_count(sent.words[tok], voice, rate, pitch)
                if k <= 0 or k >= len(items):
                    raise TimingError("cannot split espeak fused words")
                pieces.append((sent.words[tok], items[-k:]))
                items = items[:-k]
            pieces.append((sent.words[toks[0]], items))
            word_groups.extend(reversed(pieces))
        return Synthesis(
            audio=audio.astype(np.float32) / 32768.0, sample_rate=sr,
            words=words_from_groups(word_groups), phones=merge_pauses([t for t, _ in timed]),
        )
