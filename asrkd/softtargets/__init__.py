"""The soft-target cache: teachers' combined tempered posteriors, computed once, read every epoch.

The teachers run and are combined by :mod:`asrkd.inference` (forward over frames, ensemble
combination at temperature T); this package stores, checks and serves what they give.

- :mod:`asrkd.softtargets.formats`: top-k (ids + fp16 probs + fp32 tail mass) and dense fp16.
- :mod:`asrkd.softtargets.choice`: which of them a cache uses (``auto``: by the inventory's size).
- :mod:`asrkd.softtargets.checksums`: the cache's file checksums and frame-count fingerprint.
- :mod:`asrkd.softtargets.cache`: writer (sharded, resumable, rank-split) and reader.
- :mod:`asrkd.softtargets.verify`: integrity and consistency with data and label inventory.
- :mod:`asrkd.softtargets.run`: ``asrkd cache-targets`` as a library call.
- :mod:`asrkd.softtargets.source`: the soft-target source the training loop reads (cached or online).
"""
