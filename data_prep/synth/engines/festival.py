"""festival through its Scheme interpreter: one ``festival --batch`` process per utterance
saves the wave and prints every Segment with its ``end`` time and the index of its input
token (walking Token -> Word -> SylStructure -> Segment).

Conventions (README.md): pauses are ``pau`` segments (-> ``SIL``); stop closures are part of
the stop segment; a segment that post-lexical rules insert (ked_diphone's linking ``r``) belongs
to the preceding word; diphone voices do not synthesise the second half of the final pause, which
is clipped to the audio end like flite's.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import soundfile as sf

from ..reference import Synthesis, TimingError
from ..text_source import Sentence
from .flite import _build

VOICES = {
    "kal_diphone": "voice_kal_diphone",
    "ked_diphone": "voice_ked_diphone",
    "cmu_us_slt_arctic_hts": "voice_cmu_us_slt_arctic_hts",
}

_SCRIPT = """
({voice})
(Parameter.set 'Duration_Stretch {stretch})
(set! utt (SynthText "{text}"))
(utt.save.wave utt "{wav}" 'riff)
(set! tokn 0)
(mapcar (lambda (tok)
  (set! tokn (+ tokn 1))
  (format t "TOK %d %s\\n" tokn (item.name tok))
  (mapcar (lambda (w)
    (mapcar (lambda (syl)
      (mapcar (lambda (seg) (format t "PH %d %s\\n" tokn (item.name seg))) (item.daughters syl)))
      (item.daughters (item.relation w 'SylStructure))))
    (item.daughters tok)))
  (utt.relation.items utt 'Token))
(mapcar (lambda (s) (format t "SEG %s %f\\n" (item.name s) (item.feat s "end")))
  (utt.relation.items utt 'Segment))
"""


def synthesize(sent: Sentence, voice: str, stretch: float) -> Synthesis:
    """Speak ``sent.synth`` with festival voice ``voice`` (``stretch`` > 1 is slower)."""
    with tempfile.TemporaryDirectory(prefix="asrkd_fest") as tmp:
        wav = os.path.join(tmp, "out.wav")
        script = _SCRIPT.format(
            voice=VOICES[voice], stretch=f"{stretch:.4f}", text=sent.synth.replace('"', ""), wav=wav
        )
        path = os.path.join(tmp, "run.scm")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        proc = subprocess.run(["festival", "--batch", path], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not os.path.isfile(wav):
            raise RuntimeError(f"festival failed: {proc.stderr[-300:]}")
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    tokens: dict[int, str] = {}
    token_phones: list[tuple[int, str]] = []
    segs_raw: list[tuple[str, float]] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "TOK":
            tokens[int(parts[1])] = " ".join(parts[2:])
        elif len(parts) == 3 and parts[0] == "PH":
            token_phones.append((int(parts[1]), parts[2]))
        elif len(parts) == 3 and parts[0] == "SEG":
            segs_raw.append((parts[1], float(parts[2])))
    # Assign the token of each non-pause segment in order (the tree lists them in order).
    segs: list[tuple[str, float, int | None]] = []
    k = 0
    for name, end in segs_raw:
        if name == "pau":
            segs.append((name, end, None))
            continue
        if k < len(token_phones) and token_phones[k][1] == name:
            segs.append((name, end, token_phones[k][0]))
            k += 1
        elif segs and segs[-1][2] is not None:
            # A segment inserted after lexical lookup (ked_diphone's linking "r" after "er"
            # before a pause) is not in the word tree: it belongs to the preceding word.
            segs.append((name, end, segs[-1][2]))
        else:
            raise TimingError("festival Segment relation and token tree disagree")
    if k != len(token_phones):
        raise TimingError("festival token tree has phones not in the Segment relation")
    return _build(segs, tokens, audio[:, 0], int(sr), sent, "pau")
