"""Which storage format a soft-target cache uses (torch-free: the experiment plan asks it too).

The two stored formats are :mod:`asrkd.softtargets.formats`' ``topk`` and ``dense``. ``auto``
(the default of ``asrkd cache-targets`` and of the recipes' ``cache_format``) is never stored:
:func:`resolve_format` turns it into ``topk`` when the label inventory has more than
``dense_max_classes`` classes and into ``dense`` otherwise, once the teachers' class count is
known; the cache's spec.json and meta.json record the resolved name. The default threshold, 512,
is where dense fp16 (2 bytes per class) reaches 1 KB per frame, 12x top-k at k=20 (84 bytes):
below it dense is exact and still small, above it its size grows with the inventory while top-k's
does not (14,000 classes: 28 KB against 84 bytes). ``other-than-auto`` is the format ``auto``
does not choose (the recipes' "other format" step, planned before the inventory exists).
"""

from __future__ import annotations

from asrkd.errors import AsrkdError

FORMATS: tuple[str, ...] = ("topk", "dense")  # what is stored
AUTO, OTHER_THAN_AUTO = "auto", "other-than-auto"
FORMAT_CHOICES: tuple[str, ...] = (AUTO, *FORMATS, OTHER_THAN_AUTO)  # what may be asked for
DENSE_MAX_CLASSES = 512  # auto: dense up to this many classes, top-k above


def resolve_format(name: str, num_classes: int, dense_max_classes: int = DENSE_MAX_CLASSES) -> str:
    """The stored format (``topk`` | ``dense``) of a requested one (:data:`FORMAT_CHOICES`)
    for an inventory of ``num_classes`` classes."""
    if name in FORMATS:
        return name
    if name not in (AUTO, OTHER_THAN_AUTO):
        raise AsrkdError(f"unknown soft-target format {name!r}; valid: {list(FORMAT_CHOICES)}")
    if dense_max_classes < 1:
        raise AsrkdError(f"soft targets: dense_max_classes must be >= 1, got {dense_max_classes}")
    auto = "topk" if num_classes > dense_max_classes else "dense"
    return auto if name == AUTO else ("dense" if auto == "topk" else "topk")
