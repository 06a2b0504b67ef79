"""asrkd: distil an ensemble of hybrid DNN-HMM acoustic models into one student."""

__version__ = "0.1.0"
