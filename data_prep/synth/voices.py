"""Voice configurations and which split may use which voice.

A *voice* is an (engine, voice name) pair; a *voice configuration* adds prosody (espeak-ng:
speaking rate and pitch; flite and festival: duration stretch). Each configuration is one
speaker of the corpus. Dev and test voices are never used in training (held out by whole
espeak-ng accents and whole flite/festival voices, so not even a pitch- or speed-shifted
version of a test voice is trained on).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")

# Voices held out per split. espeak-ng accents are voice-file names ("en" is British English).
SPLIT_VOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "espeak": ("en-us", "en", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc"),
        "flite": ("slt", "rms", "kal16"),
        "festival": ("kal_diphone", "cmu_us_slt_arctic_hts"),
    },
    "dev": {"espeak": ("en-gb-scotland",), "flite": ("awb",), "festival": ()},
    "test": {
        "espeak": ("en-gb-x-gbcwmd", "en-029"),
        "flite": (),
        "festival": ("ked_diphone",),
    },
}


@dataclass(frozen=True)
class VoiceConfig:
    engine: str  # espeak | flite | festival
    voice: str  # engine's voice name (espeak: "<accent>+<variant>")
    rate: int = 0  # espeak-ng words per minute (0 for other engines)
    pitch: int = 0  # espeak-ng base pitch 0-99 (0 for other engines)
    stretch: float = 1.0  # flite/festival duration stretch (>1 slower)

    @property
    def speaker(self) -> str:
        """Speaker id: engine, voice and prosody, safe as a Kaldi id prefix."""
        v = self.voice.replace("+", "-").replace("_", "-")
        if self.engine == "espeak":
            return f"esp-{v}-r{self.rate}p{self.pitch}"
        return f"{self.engine[:4]}-{v}-s{round(self.stretch * 100)}"


def _rng(seed: int, *key: str) -> random.Random:
    h = hashlib.sha256(":".join([str(seed), *key]).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def split_configs(split: str, seed: int, prosody_per_voice: int = 1) -> list[VoiceConfig]:
    """All voice configurations of ``split``: every held-out voice, ``prosody_per_voice``
    seeded prosody settings each (rate 140-200 wpm, pitch 30-70; stretch 0.9-1.15)."""
    out: list[VoiceConfig] = []
    spec = SPLIT_VOICES[split]
    for accent in spec["espeak"]:
        for variant in ESPEAK_VARIANTS:
            name = f"{accent}+{variant}"
            r = _rng(seed, "espeak", name)
            for _ in range(prosody_per_voice):
                out.append(VoiceConfig("espeak", name, rate=r.randint(140, 200), pitch=r.randint(30, 70)))
    for engine in ("flite", "festival"):
        for name in spec[engine]:
            r = _rng(seed, engine, name)
            stretches = [1.0] + [round(r.uniform(0.9, 1.15), 2) for _ in range(prosody_per_voice)]
            out.extend(VoiceConfig(engine, name, stretch=s) for s in stretches)
    return out


def pick_configs(configs: list[VoiceConfig], n: int) -> list[VoiceConfig]:
    """At most ``n`` configurations, taking engines and voices in turn so that a small preset
    still covers every engine of the split."""
    by_engine: dict[str, list[VoiceConfig]] = {}
    for c in configs:
        by_engine.setdefault(c.engine, []).append(c)
    out: list[VoiceConfig] = []
    i = 0
    while len(out) < min(n, len(configs)):
        for engine in ("espeak", "flite", "festival"):
            lst = by_engine.get(engine, [])
            if i < len(lst) and len(out) < n:
                # spread over accents: stride through the list
                out.append(lst[(i * 7) % len(lst)] if len(lst) % 7 else lst[i])
        i += 1
    return list(dict.fromkeys(out))
