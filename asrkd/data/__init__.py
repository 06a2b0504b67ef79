"""Data directories and audio: Kaldi-style tables (read, write, combine, subset, validate),
audio loading with resampling to the one internal rate, and Kaldi ark/scp interchange."""
