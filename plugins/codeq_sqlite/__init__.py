"""The ``sqlite`` storage backend, codeq's default: one file, WAL, zero setup.

``sqlite:////absolute/path/codeq.db`` or ``sqlite:///relative/path.db``
(relative to the working directory); missing parent directories are created.
Several ``codeq serve`` processes may share one file: every transition is one
SQLite transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from codeq import hookimpl
from codeq.core.config import Settings
from codeq.core.errors import ConfigError
from codeq.hookspecs import StorageFactory
from codeq_sqlite.store import SqliteStorage

__all__ = ["SqliteStorage", "open_sqlite", "path_of"]

PREFIX = "sqlite:///"


def path_of(url: str) -> str:
    """The database file named by a ``sqlite:///`` URL."""
    path = url[len(PREFIX):] if url.startswith(PREFIX) else ""
    if not path or "?" in path or "#" in path or "\x00" in path:
        raise ConfigError("storage", f"{url!r} is not a sqlite URL this store understands; use "
                                     "sqlite:////absolute/path/codeq.db or sqlite:///relative.db")
    return path


def open_sqlite(url: str, settings: Settings) -> SqliteStorage:
    """An unopened store for ``url``; the file and schema are created by ``open``."""
    return SqliteStorage(path_of(url))


@hookimpl
def register_storage_backends(register: Callable[[str, StorageFactory], None]) -> None:
    register("sqlite", open_sqlite)
