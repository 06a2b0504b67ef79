"""CPU performance kernels for the training step (see README.md in this folder)."""
