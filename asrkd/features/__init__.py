"""Frame features: the one framing rule, log-mel filterbanks, the compute-feats driver, CMVN,
the model-input normalisation (noise floor) and feature-space augmentation for transfer sets."""
