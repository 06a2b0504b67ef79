"""ARPA back-off LM files: read any (plain or gzip), write ours.

Format (Doug Paul's, as SRILM, KenLM, IRSTLM and Kaldi's tools write it)::

    \\data\\
    ngram 1=M1
    ngram 2=M2
    \\1-grams:
    <log10 p>  <w1>  [<log10 backoff>]
    \\2-grams:
    <log10 p>  <w1> <w2>  [<log10 backoff>]
    \\end\\

Read tolerantly: text before ``\\data\\`` is skipped; fields may be separated by tabs or
spaces; a missing backoff weight is 0; ``<s>`` usually has -99 (it is a context only); a
section whose line count differs from its header is accepted with a warning; files are
gzip-compressed or not (detected by content). An n-gram whose prefix is not listed (``a b c``
without ``a b``) is kept; its prefix becomes a context-only row (NaN probability, backoff 0),
which is what ARPA semantics give it. A word that is no unigram is an error.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from asrkd.errors import AsrkdError
from asrkd.fileio import atomic_write_bytes
from asrkd.lm.model import BackoffLM, find_sorted

log = logging.getLogger("asrkd.lm.arpa")

_NGRAM_HEADER = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)\s*$")
_SECTION = re.compile(r"^\\(\d+)-grams:\s*$")


# ---- writing ------------------------------------------------------------------------------
def arpa_text(lm: BackoffLM) -> str:
    """The ARPA text of ``lm`` (log10 values with 7 decimals; backoff weights on every n-gram
    that is the context of a longer one, and on no other)."""
    vocab = np.array(lm.vocab, dtype=object)
    out = ["", "\\data\\"]
    out += [f"ngram {k}={m}" for k, m in enumerate(lm.num_ngrams(), 1)]
    for k in range(1, lm.order + 1):
        out += ["", f"\\{k}-grams:"]
        logp, bow = lm.logp[k - 1], lm.bow[k - 1]
        rows = np.flatnonzero(~np.isnan(logp))
        ids = lm.ngram_ids(k)[rows]
        names = vocab[ids[:, 0]]
        for j in range(1, k):
            names = names + " " + vocab[ids[:, j]]
        ctx = lm.has_children(k)[rows]
        lp, bw = logp[rows].tolist(), bow[rows].tolist()
        out += [f"{p:.7f}\t{w}\t{b:.7f}" if c else f"{p:.7f}\t{w}"
                for p, w, b, c in zip(lp, names.tolist(), bw, ctx.tolist())]
    out += ["", "\\end\\", ""]
    return "\n".join(out)


def write_arpa(lm: BackoffLM, path: Path) -> None:
    """Write ``lm`` as ARPA to ``path`` (gzip-compressed if it ends with ``.gz``), atomically."""
    data = arpa_text(lm).encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(Path(path), data)


# ---- reading ------------------------------------------------------------------------------
def _open_text(path: Path) -> IO[str]:
    path = Path(path)
    if not path.is_file():
        raise AsrkdError(f"ARPA file not found: {path}")
    with open(path, "rb") as f:
        magic = f.read(2)
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8")


def _sections(f: IO[str], path: Path) -> Iterator[tuple[int, list[str], int]]:
    """(order, data lines, count in the header) per ``\\k-grams:`` section, in file order."""
    lines = iter(f)
    for line in lines:  # skip to \data\
        if line.strip() == "\\data\\":
            break
    else:
        raise AsrkdError(f"{path}: no \\data\\ header: not an ARPA file")
    header: dict[int, int] = {}
    order, rows = 0, []
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if s[0] != "\\":  # a data line (most lines) or a header line
            if order:
                rows.append(s)
                continue
            m = _NGRAM_HEADER.match(s)
            if not m:
                raise AsrkdError(f"{path}: unexpected line in the \\data\\ header: {s[:80]!r}")
            header[int(m.group(1))] = int(m.group(2))
            continue
        m = _SECTION.match(s)
        if m:
            if order:
                yield order, rows, header.get(order, -1)
            order, rows = int(m.group(1)), []
        elif s == "\\end\\":
            if order:
                yield order, rows, header.get(order, -1)
            return
        else:
            raise AsrkdError(f"{path}: unexpected line {s[:80]!r}")
    raise AsrkdError(f"{path}: ends without \\end\\ (truncated?)")


def _parse(rows: list[str], k: int, path: Path) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Fields of the lines of section ``k``: ``[logp, w1..wk(, bow)]`` each, log10 p, log10 backoff."""
    parts = [r.split() for r in rows]
    for r, n in zip(rows, map(len, parts)):
        if n != k + 1 and n != k + 2:
            raise AsrkdError(f"{path}: \\{k}-grams: line {r[:80]!r} has {n} fields, expected {k + 1} or {k + 2}")
    try:
        logp = np.array([f[0] for f in parts], dtype=np.float64)
        bow = np.array([f[k + 1] if len(f) == k + 2 else "0" for f in parts], dtype=np.float64)
    except ValueError:
        raise AsrkdError(f"{path}: \\{k}-grams: a probability or backoff weight is not a number") from None
    return parts, logp, bow


def load_arpa(path: Path) -> BackoffLM:
    """Read an ARPA file (plain or gzip) into a :class:`BackoffLM` (see module docstring).

    Each section becomes arrays as soon as it is read, so the text of one section at a time is
    held (a few million n-grams read in seconds; a file of tens of millions needs GBs)."""
    path = Path(path)
    vocab: list[str] = []
    index: dict[str, int] = {}
    ids: list[np.ndarray] = []
    logps: list[np.ndarray] = []
    bows: list[np.ndarray] = []
    with _open_text(path) as f:
        try:
            for k, rows, expected in _sections(f, path):
                if k != len(ids) + 1:
                    raise AsrkdError(f"{path}: section \\{k}-grams: out of order or repeated")
                if expected != len(rows):
                    log.warning("%s: \\%d-grams: header says %d n-grams, %d listed", path, k, expected, len(rows))
                parts, lp, bw = _parse(rows, k, path)
                del rows
                if k == 1:
                    vocab = [p[1] for p in parts]
                    index = {w: i for i, w in enumerate(vocab)}
                    if len(index) != len(vocab):
                        raise AsrkdError(f"{path}: a word is listed twice among the 1-grams")
                    flat = list(range(len(vocab)))
                else:
                    try:
                        flat = [index[w] for p in parts for w in p[1:k + 1]]
                    except KeyError as e:
                        raise AsrkdError(f"{path}: \\{k}-grams: word {e.args[0]!r} is not among the 1-grams") from None
                del parts
                ids.append(np.array(flat, dtype=np.int64).reshape(-1, k))
                logps.append(lp)
                bows.append(bw)
        except UnicodeDecodeError as e:
            raise AsrkdError(f"{path}: not valid UTF-8 ({e.reason})") from None
    if not ids:
        raise AsrkdError(f"{path}: no 1-grams")
    lm = _build(vocab, ids, logps, bows, path)
    log.info("%s: order %d, vocabulary %d, n-grams %s", path, lm.order, lm.vocab_size, lm.num_ngrams())
    return lm


def _build(vocab: list[str], ids: list[np.ndarray], logps: list[np.ndarray], bows: list[np.ndarray],
           path: Path) -> BackoffLM:
    """Sorted tables from listed n-grams ``ids[k-1] (M_k, k)``; missing prefixes become
    context-only rows (NaN probability)."""
    V = len(vocab)
    N = len(ids)
    prefix: list[np.ndarray] = [np.zeros(V, dtype=np.int64)]
    word: list[np.ndarray] = [ids[0][:, 0]]
    keys: list[np.ndarray] = [ids[0][:, 0].copy()]
    logp, bow = [logps[0]], [bows[0]]
    k = 2
    while k <= N:
        ng = ids[k - 1]
        row = ng[:, 0]
        missing_at = 0
        for j in range(2, k):  # the prefix's row, one word at a time
            row = find_sorted(keys[j - 1], row * V + ng[:, j - 1]) if len(ng) else row
            if np.any(row < 0):
                missing_at = j
                break
        if missing_at:
            # List the missing prefixes (of length missing_at) as context-only rows and rebuild.
            j = missing_at
            lost = np.unique(ng[row < 0, :j], axis=0)
            log.warning("%s: %d %d-grams are prefixes of longer n-grams but not listed; kept as "
                        "contexts (backoff weight 0)", path, len(lost), j)
            ids[j - 1] = np.concatenate([ids[j - 1], lost])
            logps[j - 1] = np.concatenate([logps[j - 1], np.full(len(lost), np.nan)])
            bows[j - 1] = np.concatenate([bows[j - 1], np.zeros(len(lost))])
            del prefix[j - 1:], word[j - 1:], keys[j - 1:], logp[j - 1:], bow[j - 1:]
            k = j
            continue
        kk = row * V + ng[:, k - 1]
        order = np.argsort(kk, kind="stable")
        kk = kk[order]
        if len(kk) > 1 and np.any(kk[1:] == kk[:-1]):
            raise AsrkdError(f"{path}: a {k}-gram is listed twice")
        prefix.append(row[order])
        word.append(ng[order, k - 1])
        keys.append(kk)
        logp.append(logps[k - 1][order])
        bow.append(bows[k - 1][order])
        k += 1
    return BackoffLM(vocab, prefix, word, logp, bow)
