"""The one exception type that the command line turns into a clean message (no traceback)."""


class AsrkdError(Exception):
    """A user-facing error: bad input, mismatched files, a refused operation.

    The CLI prints ``error: <message>`` and exits with status 2; library callers may catch it.
    """
