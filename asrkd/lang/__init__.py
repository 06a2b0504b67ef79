"""The lang directory: word -> unit tokenizers, the label inventory (units x HMM states) and the
unit n-gram LM estimated from training transcripts."""
