"""Hybrid decoding: scaled likelihoods, a numba beam search over unit HMMs + a unit n-gram LM,
word decoding through an HCLG graph (kaldi-decoder), label priors, the dev sweep of LM weight /
insertion penalty, WER and DNN realignment.

Modules: :mod:`.graph` (HMM and unit-network arrays), :mod:`.search` (numba token passing),
:mod:`.decoder` (config, Lang adapter, words), :mod:`.hclg` (word graphs, from
:mod:`.lexicon_fst`, :mod:`.hmm_fst`, :mod:`.arpa`, :mod:`.fstio`), :mod:`.fst_search`,
:mod:`.wfst_decoder`, :mod:`.graph_wer`, :mod:`.wer`, :mod:`.status` (is the WER step complete;
no heavy imports), :mod:`.priors`, :mod:`.sweep`, :mod:`.realign`, :mod:`.transcribe`.
Nothing is imported here, so asking :mod:`.status` costs no numba start-up.
"""
