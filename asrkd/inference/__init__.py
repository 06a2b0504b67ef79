"""Running trained models over frames: the one place training, the soft-target cache,
evaluation, decoding and realignment share (DESIGN.md, "Dependency direction").

- :mod:`asrkd.inference.spec`: the syntax of ``--device`` and ``--precision`` (no torch: parsing stays fast).
- :mod:`asrkd.inference.device`: ``--device`` and ``--precision`` resolution, autocast, host-to-GPU copies.
- :mod:`asrkd.inference.window`: the frame-context window (edges repeat the end frames).
- :mod:`asrkd.inference.model`: reading checkpoints (``weights_only``) into an :class:`InferenceModel`.
- :mod:`asrkd.inference.forward`: the one forward over frames (input normalisation, window, model).
- :mod:`asrkd.inference.ensemble`: ensemble combination (mean / geometric mean) at temperature T.

Nothing here imports training, the soft-target cache, evaluation or decoding: they import it.
"""
