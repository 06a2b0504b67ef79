"""Completion of the frame-accuracy step of ``asrkd evaluate``, decided without torch.

:func:`asrkd.evaluation.evaluate.write_frame_accuracy` skips on this rule, and ``asrkd evaluate``
asks it before importing torch (seconds of start-up), so a complete evaluation costs milliseconds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asrkd.fileio import is_done

log = logging.getLogger(__name__)

FRAME_ACC_DONE = ".frame_acc.done"  # completion marker of the frame-accuracy step in an evaluation dir


def frame_accuracy_complete(out_dir: Path, force: bool = False, quiet: bool = False) -> bool:
    """True (logged unless ``quiet``) when ``out_dir`` holds a finished frame accuracy and not ``force``."""
    if force or not is_done(Path(out_dir), FRAME_ACC_DONE):
        return False
    if not quiet:
        log.info("%s: frame accuracy is complete; skipping (use --force to redo)", out_dir)
    return True
