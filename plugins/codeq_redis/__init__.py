"""The Redis / Valkey / Apache KVRocks / Redis Cluster storage backend.

Selected by ``redis://``, ``rediss://`` or ``redis+cluster://host:port[,host:port...]``
storage URLs (and the legacy ``redisAddr`` / ``redisPassword`` settings, which
the core maps to ``redis://``). See ``docs/storage.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codeq import hookimpl

if TYPE_CHECKING:
    from codeq.core.config import Settings
    from codeq.core.storage import Storage
    from codeq_redis.store import RedisStorage

__all__ = ["RedisStorage"]
#: URL schemes of this backend (``codeq_redis.connection`` parses them).
SCHEMES = ("redis", "rediss", "redis+cluster")


def __getattr__(name: str) -> Any:
    # The redis client is imported on first use: the command line loads every plugin.
    if name == "RedisStorage":
        from codeq_redis.store import RedisStorage

        return RedisStorage
    raise AttributeError(name)


def open_store(url: str, settings: Settings) -> Storage:
    from codeq_redis.store import RedisStorage

    return RedisStorage(url)


@hookimpl
def register_storage_backends(register: Callable[[str, Callable[[str, Settings], Storage]],
                                                 None]) -> None:
    for scheme in SCHEMES:
        register(scheme, open_store)
