"""The ``memory://`` storage backend: the whole store in one process, gone when it exits.

For tests and throwaway runs. Each ``memory://`` URL opened is a new, empty store.
"""

from __future__ import annotations

from collections.abc import Callable

from codeq import hookimpl
from codeq.core.config import Settings
from codeq.core.errors import ConfigError
from codeq.hookspecs import StorageFactory
from codeq_memory.store import MemoryStorage

__all__ = ["MemoryStorage", "open_memory"]


def open_memory(url: str, settings: Settings) -> MemoryStorage:
    """A fresh empty store for ``memory://`` (nothing may follow the scheme)."""
    if url.rstrip("/") != "memory:":
        raise ConfigError("storage", f"{url!r}: a memory store takes no location; use memory://")
    return MemoryStorage()


@hookimpl
def register_storage_backends(register: Callable[[str, StorageFactory], None]) -> None:
    register("memory", open_memory)
