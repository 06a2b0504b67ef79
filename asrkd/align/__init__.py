"""Frame alignment: per-utterance HMM state graphs, a banded log-domain Viterbi (numba), the
flat-start Gaussian estimator, label import and boundary scoring.

Realignment with any model goes through :func:`asrkd.align.aligner.align_loglik`: it takes an
utterance's per-frame log-likelihoods ``(frames, num_classes)`` (or scaled log posteriors) and its
graph, and returns the best state sequence.
"""
