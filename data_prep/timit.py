#!/usr/bin/env python3
"""Prepare TIMIT: ``python data_prep/timit.py TIMIT/ OUT_DIR``.

Layout (LDC): ``TRAIN|TEST/DR1..DR8/<speaker>/<sentence>.WAV`` (NIST SPHERE, 16 kHz) with
``.TXT`` (``<first> <last sample> <sentence>``), ``.WRD`` and ``.PHN`` (``<first> <last sample>
<word|phone>`` per line) next to each. Upper or lower case names both work; ids are upper case.

Split (the standard one, as in Kaldi's TIMIT recipe):
- train: all of TRAIN (462 speakers, 3696 utterances);
- dev: the 50 speakers of :data:`DEV_SPEAKERS`, from TEST (400 utterances);
- test: the 24-speaker core test set :data:`CORE_TEST_SPEAKERS`, from TEST (192 utterances).
The other 94 TEST speakers are not used. The SA1/SA2 sentences (read by every speaker) are
dropped everywhere, as is standard.

Speaker = the speaker directory (e.g. ``FCJF0``, sex + initials + digit); utterance id
``<speaker>-<sentence>`` (``FCJF0-SI1027``). Two extra per-utterance tables keep the label
files for later import: ``utt2phn`` and ``utt2wrd``, ``<utt> <absolute path of the .PHN/.WRD
file>`` (times there are 16 kHz sample indices).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkd.errors import AsrkdError
from common import Utt, base_parser, main, transcript, utt_id

log = logging.getLogger("asrkd.data_prep")

CORE_TEST_SPEAKERS = frozenset(
    "MDAB0 MWBT0 FELC0 MTAS1 MWEW0 FPAS0 MJMP0 MLNT0 FPKT0 MLLL0 MTLS0 FJLM0 "
    "MBPM0 MKLT0 FNLP0 MCMJ0 MJDH0 FMGD0 MGRT0 MNJM0 FDHC0 MJLN0 MPAM0 FMLD0".split()
)
DEV_SPEAKERS = frozenset(
    "FAKS0 FDAC1 FJEM0 MGWT0 MJAR0 MMDB1 MMDM2 MPDF0 FCMH0 FKMS0 MBDG0 MBWM0 MCSH0 FADG0 FDMS0 "
    "FEDW0 MGJF0 MGLB0 MRTK0 MTAA0 MTDT0 MTHC0 MWJG0 FNMR0 FREW0 FSEM0 MBNS0 MMJR0 MDLS0 MDLF0 "
    "MDVC0 MERS0 FMAH0 FDRW0 MRCS0 MRJM4 FCAL1 MMWH0 FJSJ0 MAJC0 MJSW0 MREB0 FGJD0 FJMG0 MROA0 "
    "MTEB0 MJFC0 MRJR0 FMML0 MRWS1".split()
)
assert len(CORE_TEST_SPEAKERS) == 24 and len(DEV_SPEAKERS) == 50 and not CORE_TEST_SPEAKERS & DEV_SPEAKERS


def _child(parent: Path, name: str) -> Path | None:
    """The child of ``parent`` called ``name`` in any letter case."""
    for p in parent.iterdir():
        if p.name.upper() == name.upper():
            return p
    return None


def _find_part(corpus_dir: Path, part: str) -> Path:
    """``TRAIN``/``TEST`` in the corpus dir, or one level down (``TIMIT/TIMIT/TRAIN``)."""
    for base in [corpus_dir, *sorted(p for p in corpus_dir.iterdir() if p.is_dir())]:
        found = _child(base, part)
        if found is not None and found.is_dir():
            return found
    raise AsrkdError(f"no {part} directory in {corpus_dir}")


def _sibling(wav: Path, suffix: str) -> Path:
    for cand in (wav.with_suffix(suffix.upper()), wav.with_suffix(suffix.lower())):
        if cand.is_file():
            return cand
    raise AsrkdError(f"{wav}: no {suffix.upper()} file next to it")


def read_part(part_dir: Path, speakers: frozenset[str] | None) -> list[Utt]:
    """Utterances of TRAIN or TEST (only ``speakers`` if given), SA sentences dropped."""
    utts = []
    for wav in sorted(part_dir.glob("*/*/*")):
        # Some copies add converted ``SA1.WAV.wav`` files: take only the original ``<name>.WAV``.
        if wav.suffix.upper() != ".WAV" or "." in wav.stem or not wav.parent.parent.name.upper().startswith("DR"):
            continue
        spk, sent = wav.parent.name.upper(), wav.stem.upper()
        if sent.startswith("SA") or (speakers is not None and spk not in speakers):
            continue
        txt = _sibling(wav, ".txt")
        fields = txt.read_text(encoding="utf-8", errors="strict").split(maxsplit=2)
        if len(fields) < 3:
            raise AsrkdError(f"{txt}:1: expected '<first> <last> <sentence>'")
        utts.append(Utt(
            utt_id(spk, sent), spk, wav, transcript(fields[2], f"{txt}:1"),
            extra={"utt2phn": str(_sibling(wav, ".phn").resolve()), "utt2wrd": str(_sibling(wav, ".wrd").resolve())},
        ))
    return utts


def prepare(args: argparse.Namespace) -> dict[str, list[Utt]]:
    train = read_part(_find_part(args.corpus_dir, "TRAIN"), None)
    test_dir = _find_part(args.corpus_dir, "TEST")
    splits = {"train": train, "dev": read_part(test_dir, DEV_SPEAKERS), "test": read_part(test_dir, CORE_TEST_SPEAKERS)}
    for name, wanted in (("dev", DEV_SPEAKERS), ("test", CORE_TEST_SPEAKERS)):
        absent = wanted - {u.spk for u in splits[name]}
        if absent:
            log.warning("%s: %d of the %d standard speakers are not in the corpus (e.g. %s)",
                        name, len(absent), len(wanted), sorted(absent)[0])
    return splits


if __name__ == "__main__":
    sys.exit(main(base_parser(__doc__.splitlines()[0]), prepare))
