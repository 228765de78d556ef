"""codeq: a durable task queue server, its worker runtime and its command line.

The SDK names (``Client``, ``Worker``, the errors, ...) are imported on first
use, so that plugins importing ``hookimpl`` do not pay for httpx.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from codeq.hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "codeq.client": ("ApiError", "AsyncClient", "BadRequest", "Client", "Conflict",
                     "ConnectionFailed", "Forbidden", "NotFound", "PayloadTooLarge",
                     "ServerError", "ServiceUnavailable", "Unauthorized", "verify_signature"),
    "codeq.worker": ("Abandon", "Fail", "Job", "Retry", "Worker"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "Abandon", "ApiError", "AsyncClient", "BadRequest", "Client", "Conflict", "ConnectionFailed",
    "Fail", "Forbidden", "Job", "NotFound", "PayloadTooLarge", "Retry", "ServerError",
    "ServiceUnavailable", "Unauthorized", "Worker", "__version__", "hookimpl", "verify_signature",
]

if TYPE_CHECKING:  # the lazy names, for type checkers
    from codeq.client import (
        ApiError as ApiError,
    )
    from codeq.client import (
        AsyncClient as AsyncClient,
    )
    from codeq.client import (
        BadRequest as BadRequest,
    )
    from codeq.client import (
        Client as Client,
    )
    from codeq.client import (
        Conflict as Conflict,
    )
    from codeq.client import (
        ConnectionFailed as ConnectionFailed,
    )
    from codeq.client import (
        Forbidden as Forbidden,
    )
    from codeq.client import (
        NotFound as NotFound,
    )
    from codeq.client import (
        PayloadTooLarge as PayloadTooLarge,
    )
    from codeq.client import (
        ServerError as ServerError,
    )
    from codeq.client import (
        ServiceUnavailable as ServiceUnavailable,
    )
    from codeq.client import (
        Unauthorized as Unauthorized,
    )
    from codeq.client import (
        verify_signature as verify_signature,
    )
    from codeq.worker import (
        Abandon as Abandon,
    )
    from codeq.worker import (
        Fail as Fail,
    )
    from codeq.worker import (
        Job as Job,
    )
    from codeq.worker import (
        Retry as Retry,
    )
    from codeq.worker import (
        Worker as Worker,
    )


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'codeq' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
