"""Completion of the WER step of ``asrkd evaluate``, decided without torch, numba or the graph.

``out_dir/.wer.done`` names the decoder that wrote the WER (``unit-lm``, or ``graph:<fingerprint>``
of the HCLG directory). :func:`asrkd.decode.wer.write_wer` skips on this rule, and ``asrkd
evaluate`` asks it before importing anything heavy, so a complete evaluation costs milliseconds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asrkd.errors import AsrkdError
from asrkd.fileio import is_done, read_json

log = logging.getLogger(__name__)

WER_DONE = ".wer.done"  # completion marker of the WER step in an evaluation dir


def decoder_tag(graph: Path | None) -> str:
    """``graph:<fingerprint>`` of a complete graph directory (its graph.json), or ``unit-lm``."""
    if graph is None:
        return "unit-lm"
    graph = Path(graph)
    if not is_done(graph) or not (graph / "graph.json").is_file():
        raise AsrkdError(f"{graph} is not a complete decoding graph (build it with `asrkd mkgraph`)")
    return f"graph:{read_json(graph / 'graph.json')['fingerprint']}"


def wer_complete(out_dir: Path, tag: str, force: bool = False, quiet: bool = False) -> bool:
    """True (logged unless ``quiet``) when ``out_dir`` holds a WER by the decoder ``tag`` and not ``force``;
    AsrkdError when it holds one by another decoder (a rerun must not mix two decoders' results)."""
    out_dir = Path(out_dir)
    if force or not is_done(out_dir, WER_DONE):
        return False
    done = read_json(out_dir / WER_DONE).get("decoder", "unit-lm")
    if done != tag:
        raise AsrkdError(f"{out_dir} holds a WER from another decoder ({done}); use another --out or --force")
    if not quiet:
        log.info("%s: WER is complete; skipping (use --force to redo)", out_dir)
    return True
