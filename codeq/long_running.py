"""Garbage-collector settings for the long-running processes: a server, a worker.

Python's cyclic collector runs a young collection every 700 container allocations and
now and then rescans every object alive. A batch of 512 tasks makes about 10,000
containers in the server and the worker; measured in process (interleaved runs), the
default cost 5 to 20 percent of a batch's server CPU. Refcounting frees nearly
everything codeq makes, so few cycles wait for the collector.
"""

from __future__ import annotations

import gc

#: Container allocations between two young collections.
YOUNG_THRESHOLD = 10_000


def settle_collector() -> None:
    """Once a process has built what it keeps for its lifetime (modules, classes, the app
    or the worker): freeze it, so the collector stops rescanning it, and collect the
    young generation less often. Called by ``codeq serve`` and ``codeq worker start``,
    never by the library: an embedding program keeps its own settings."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
