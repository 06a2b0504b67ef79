"""flite through libflite (ctypes): the utterance's Segment relation gives each phone's end
time (the ``end`` feature), and ``R:SylStructure.parent.parent.R:Token.parent`` the input
token a phone belongs to.

Conventions (README.md): pauses are ``pau`` segments (-> ``SIL``); a stop's closure is part of
the stop segment (flite's segments carry no separate closure). The diphone voice ``kal16``
does not synthesise the second half of the final pause, so the final pause is clipped to the
audio end (never a speech phone).
"""

from __future__ import annotations

import ctypes as C

import numpy as np

from ..reference import SIL, Synthesis, Timed, TimingError, merge_pauses, words_from_groups
from ..text_source import Sentence
from asrkd.text import normalize_text

VOICES = {"slt": "cmu_us_slt", "rms": "cmu_us_rms", "awb": "cmu_us_awb", "kal16": "cmu_us_kal16"}


class _Wave(C.Structure):
    _fields_ = [
        ("type", C.c_char_p), ("sample_rate", C.c_int), ("num_samples", C.c_int),
        ("num_channels", C.c_int), ("samples", C.POINTER(C.c_short)),
    ]


class _Voice(C.Structure):  # leading fields of cst_voice
    _fields_ = [("name", C.c_char_p), ("features", C.c_void_p)]


class Flite:
    """One per process; voices are registered on first use."""

    def __init__(self) -> None:
        self.lib = lib = C.CDLL("libflite.so.1", mode=C.RTLD_GLOBAL)
        for dep in ("libflite_usenglish.so.1", "libflite_cmulex.so.1"):
            C.CDLL(dep, mode=C.RTLD_GLOBAL)
        lib.flite_init()
        sig = {
            "flite_synth_text": (C.c_void_p, [C.c_char_p, C.c_void_p]),
            "utt_wave": (C.POINTER(_Wave), [C.c_void_p]),
            "utt_relation": (C.c_void_p, [C.c_void_p, C.c_char_p]),
            "relation_head": (C.c_void_p, [C.c_void_p]),
            "item_next": (C.c_void_p, [C.c_void_p]),
            "ffeature_string": (C.c_char_p, [C.c_void_p, C.c_char_p]),
            "ffeature_float": (C.c_float, [C.c_void_p, C.c_char_p]),
            "path_to_item": (C.c_void_p, [C.c_void_p, C.c_char_p]),
            "delete_utterance": (None, [C.c_void_p]),
            "flite_feat_set_float": (None, [C.c_void_p, C.c_char_p, C.c_float]),
        }
        for name, (res, args) in sig.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self._voices: dict[str, C.c_void_p] = {}

    def _voice(self, name: str) -> int:
        if name not in self._voices:
            stem = VOICES[name]
            vlib = C.CDLL(f"libflite_{stem}.so.1")
            reg = getattr(vlib, f"register_{stem}")
            reg.restype, reg.argtypes = C.c_void_p, [C.c_char_p]
            v = reg(None)
            if not v:
                raise RuntimeError(f"flite voice {name} failed to register")
            self._voices[name] = v
        return self._voices[name]

    def synthesize(self, sent: Sentence, voice: str, stretch: float) -> Synthesis:
        """Speak ``sent.synth``; ``stretch`` > 1 is slower (flite's ``duration_stretch``)."""
        lib = self.lib
        v = self._voice(voice)
        feats = C.cast(v, C.POINTER(_Voice)).contents.features
        lib.flite_feat_set_float(feats, b"duration_stretch", stretch)
        utt = lib.flite_synth_text(sent.synth.encode("utf-8"), v)
        try:
            w = lib.utt_wave(utt).contents
            audio = np.ctypeslib.as_array(w.samples, shape=(w.num_samples * w.num_channels,))
            audio = audio.reshape(-1, w.num_channels)[:, 0].astype(np.float32) / 32768.0
            sr = int(w.sample_rate)
            segs: list[tuple[str, float, int | None]] = []
            tokens: dict[int, str] = {}
            item = lib.relation_head(lib.utt_relation(utt, b"Segment"))
            while item:
                name = lib.ffeature_string(item, b"name").decode()
                end = float(lib.ffeature_float(item, b"end"))
                tok = None
                if name != "pau":
                    tok = lib.path_to_item(item, b"R:SylStructure.parent.parent.R:Token.parent")
                    if not tok:
                        raise TimingError(f"flite phone {name} has no token")
                    tokens[tok] = lib.ffeature_string(tok, b"name").decode()
                segs.append((name, end, tok))
                item = lib.item_next(item)
        finally:
            lib.delete_utterance(utt)
        return _build(segs, tokens, audio, sr, sent, "pau")


def _build(
    segs: list[tuple[str, float, int | None]], tokens: dict, audio: np.ndarray, sr: int,
    sent: Sentence, pause: str,
) -> Synthesis:
    """Phone and word tiers from ``(phone, end_s, token key or None)`` in order. Shared with
    festival (same Segment/Token structure)."""
    duration = len(audio) / sr
    if segs and segs[-1][0] == pause and segs[-1][1] > duration:
        segs[-1] = (pause, duration, None)  # see module docstring (diphone final pause)
    phones: list[Timed] = []
    groups: list[tuple[object, list[Timed]]] = []
    start = 0.0
    for name, end, tok in segs:
        t = Timed(SIL if name == pause else name, start, end)
        phones.append(t)
        start = end
        if tok is None:
            continue
        if not groups or groups[-1][0] != tok:
            groups.append((tok, []))
        groups[-1][1].append(t)
    words = [normalize_text(tokens[tok]) for tok, _ in groups]
    if any(" " in w or not w for w in words):
        raise TimingError("a token became several words or none")
    return Synthesis(
        audio=audio, sample_rate=sr,
        words=words_from_groups([(w, ph) for w, (_, ph) in zip(words, groups)]),
        phones=merge_pauses(phones),
    )
