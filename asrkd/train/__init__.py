"""Training: configs, data loading, the one training loop, checkpoints, DDP helpers.

A teacher is a model trained with soft-target weight 0; the student is the same loop with a
soft-target source (:mod:`asrkd.train.loss`).
"""
