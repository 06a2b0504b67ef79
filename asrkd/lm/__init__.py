"""Word n-gram language models: counting, modified Kneser-Ney, pruning, ARPA files.

Modules:
- :mod:`.model`: :class:`BackoffLM`, the backoff form every LM here takes (what an ARPA file
  holds): n-gram tables per order, vectorised lookups with backoff, sentence scoring;
- :mod:`.counts`: sentences -> word ids -> n-gram tables with raw counts (numpy, sort-based);
- :mod:`.kneser_ney`: interpolated modified Kneser-Ney (Chen & Goodman 1998), three discounts
  per order, written in backoff form; the equal-probability word loop (a grammar);
- :mod:`.prune`: count cut-offs and relative-entropy pruning (Stolcke 1998), to a threshold or
  to a size, with backoff weights renormalised;
- :mod:`.arpa`: read any ARPA file (plain or gzip), write ours;
- :mod:`.evaluate`: perplexity and OOV rate of a text;
- :mod:`.train`: the ``asrkd train-lm`` step (inputs, vocabulary, outputs, ``.done``).

The unit LM of the numba decoder (:mod:`asrkd.lang.unit_lm`) is a separate, older estimator
over unit ids; it is unchanged.
"""

from asrkd.lm.arpa import load_arpa, write_arpa
from asrkd.lm.model import BOS, EOS, UNK, BackoffLM

__all__ = ["BOS", "EOS", "UNK", "BackoffLM", "load_arpa", "write_arpa"]
