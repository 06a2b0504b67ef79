"""Hybrid decoding: scaled likelihoods, a numba beam search over unit HMMs + a unit n-gram LM,
greedy decoding for comparison, label priors and the dev sweep of LM weight / insertion penalty.

Modules: :mod:`.graph` (HMM and unit-network arrays), :mod:`.search` (numba token passing),
:mod:`.decoder` (config, Lang adapter, words), :mod:`.priors`, :mod:`.sweep`, :mod:`.synthetic`.
"""

from asrkd.decode.decoder import DecodeConfig, Decoder, Hypothesis, greedy_units, search

__all__ = ["DecodeConfig", "Decoder", "Hypothesis", "greedy_units", "search"]
