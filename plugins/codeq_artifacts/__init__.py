"""The ``local`` artifact store: uploaded result artifacts as files in a directory.

Layout: ``<localArtifactsDir>/<task id>/<name>`` (default directory:
``<dataDir>/artifacts``). Names are validated by the core before they get
here, so they are plain file names. Writes go to a temporary file first and
are renamed into place, so a reader never sees half an artifact. File work
runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from codeq import hookimpl
from codeq.core.artifacts import ArtifactStore
from codeq.core.config import Settings


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _write(self, task_id: str, name: str, data: bytes) -> None:
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _read(self, task_id: str, name: str) -> bytes | None:
        try:
            return (self.root / task_id / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _delete(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            shutil.rmtree(self.root / task_id, ignore_errors=True)

    async def put(self, task_id: str, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, task_id, name, data)

    async def get(self, task_id: str, name: str) -> bytes | None:
        return await asyncio.to_thread(self._read, task_id, name)

    async def delete(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            await asyncio.to_thread(self._delete, list(task_ids))


@hookimpl
def register_artifact_stores(register: Callable[[str, Callable[[Settings], ArtifactStore]], None]
                             ) -> None:
    register("local", lambda settings: LocalArtifactStore(settings.artifacts_path))
