"""Run a function in a forked child and return its result (or re-raise its exception).

libespeak-ng keeps state between utterances (the same text gives slightly different audio
after a different history), so each utterance is synthesised in a fresh child: the corpus is
then the same for a seed whatever the number of workers, the order of work, or a resume.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable


def run_isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a forked child (POSIX). The result must be picklable."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's stack
        code = 0
        try:
            os.close(r)
            try:
                payload = (True, fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the parent
                payload = (False, e)
            with os.fdopen(w, "wb") as f:
                pickle.dump(payload, f)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"synthesis child died (status {status})")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value
