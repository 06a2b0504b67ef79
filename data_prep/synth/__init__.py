"""Synthetic multi-voice English corpus with exact word and phone timings (issue 3).

Run from the repository root: ``python -m data_prep.synth make --preset default --out DIR``;
``python -m data_prep.synth energy DIR/test`` prints the pause/word energy check.
See README.md in this folder.
"""
