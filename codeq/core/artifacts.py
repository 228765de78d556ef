"""Result artifacts uploaded as bytes (``contentBase64``): the artifact-store contract.

Where the bytes go is a plugin's business (``register_artifact_stores``); the
built-in ``local`` store keeps them in a directory. The result record keeps
each artifact's name, content type and the URL it is served at, so a store
only maps ``(task id, name)`` to bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from urllib.parse import quote

#: Where the server serves a stored artifact (``GET``, any valid token).
ARTIFACT_PATH = "/v1/codeq/tasks/{task_id}/artifacts/{name}"
MAX_NAME_BYTES = 255


def check_artifact_name(name: str) -> str:
    """Names become file names: no separators, no ``..``, no control characters, 1..255 bytes."""
    if not name:
        raise ValueError("artifact names may not be empty")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"artifact names are at most {MAX_NAME_BYTES} bytes (UTF-8)")
    if "/" in name or "\\" in name:
        raise ValueError("artifact names may not contain path separators (/ or \\)")
    if ".." in name or name == ".":
        raise ValueError("artifact names may not be '.' or contain '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("artifact names may not contain control characters")
    return name


def artifact_url(task_id: str, name: str) -> str:
    return ARTIFACT_PATH.format(task_id=task_id, name=quote(name, safe=""))


class ArtifactStore(ABC):
    """Bytes by ``(task_id, name)``; both are validated before any call."""

    async def close(self) -> None:
        """Release what the store holds."""

    @abstractmethod
    async def put(self, task_id: str, name: str, data: bytes) -> None:
        """Store (or replace) an artifact, atomically: readers see the old or the new bytes."""

    @abstractmethod
    async def get(self, task_id: str, name: str) -> bytes | None:
        """The stored bytes, or None."""

    @abstractmethod
    async def delete(self, task_ids: Sequence[str]) -> None:
        """Remove every artifact of these tasks (cleanup); unknown ids are fine."""
