"""How a handler says what should happen to its task, besides returning a result.

* return a value        -> the task is COMPLETED with that value (JSON) as result
* ``raise Retry(...)``  -> NACK: retried later (``delay_seconds``, else the server's backoff)
* ``raise Fail(...)``   -> the task is FAILED for good with ``error`` (no retry)
* ``raise Abandon()``   -> given back at once, attempts unchanged
* any other exception   -> NACK with the exception as the reason
"""

from __future__ import annotations


class Retry(Exception):
    """Try this task again later: a NACK with ``delay_seconds`` (None: server's backoff)."""

    def __init__(self, reason: str = "retry requested by the handler", *,
                 delay_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_seconds = delay_seconds


class Fail(Exception):
    """Give up on this task: it ends FAILED with ``error``, whatever attempts remain."""

    def __init__(self, error: str = "failed by the handler") -> None:
        super().__init__(error)
        self.error = error


class Abandon(Exception):
    """Give the task back now (another worker may take it at once); attempts unchanged."""


class Leave(Exception):
    """Report nothing and stop heartbeating: the lease runs out (``--ack none``)."""
