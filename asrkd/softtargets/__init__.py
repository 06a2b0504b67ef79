"""The soft-target cache: teachers' combined tempered posteriors, computed once, read every epoch.

- :mod:`asrkd.softtargets.combine`: ensemble combination at temperature T (mean / geometric).
- :mod:`asrkd.softtargets.formats`: top-k (ids + fp16 probs + fp32 tail mass) and dense fp16.
- :mod:`asrkd.softtargets.cache`: writer (sharded, resumable, rank-split) and reader.
- :mod:`asrkd.softtargets.verify`: checksums and consistency with data and label inventory.
- :mod:`asrkd.softtargets.source`: the soft-target source the training loop reads (cached or online).
"""
