"""Scoring models: frame accuracy of a model or an ensemble, and WER/CER with S/D/I counts."""
