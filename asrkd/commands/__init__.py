"""Subcommands of the ``asrkd`` CLI, one module each (discovered by :mod:`asrkd.cli`)."""
