"""Completion of a training run, decided without torch.

A run is complete when its ``.done`` marker exists (written after ``final.pt``).
:func:`asrkd.train.loop.train` skips on this rule, and ``asrkd train`` asks it before importing
torch, so a recipe's rerun does not pay torch's start-up (seconds) for every finished model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asrkd.fileio import is_done

log = logging.getLogger("asrkd.train")


def training_complete(out: Path, force: bool = False) -> bool:
    """True (logged) when ``out`` holds a finished run and not ``force`` (``--force`` retrains)."""
    if force or not is_done(Path(out)):
        return False
    log.info("%s is complete; skipping (use --force to retrain)", out)
    return True
