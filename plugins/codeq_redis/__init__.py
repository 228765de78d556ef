"""The Redis / Valkey / Apache KVRocks / Redis Cluster storage backend.

Selected by ``redis://``, ``rediss://`` or ``redis+cluster://host:port[,host:port...]``
storage URLs (and the legacy ``redisAddr`` / ``redisPassword`` settings, which
the core maps to ``redis://``). See ``docs/storage.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from codeq import hookimpl
from codeq.core.config import Settings
from codeq.core.storage import Storage
from codeq_redis.connection import SCHEMES
from codeq_redis.store import RedisStorage

__all__ = ["RedisStorage"]


def open_store(url: str, settings: Settings) -> Storage:
    return RedisStorage(url)


@hookimpl
def register_storage_backends(register: Callable[[str, Callable[[str, Settings], Storage]],
                                                 None]) -> None:
    for scheme in SCHEMES:
        register(scheme, open_store)
