"""The typed state every command gets: global options resolved against the profile.

Precedence for each setting: command-line flag, then environment variable
(typer reads both), then the profile in ``~/.codeq/config.yaml``, then the
default. With no token configured and a server on this machine, the CLI
mints a dev token with the dev key of the server's data directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import typer

from codeq.cli import output
from codeq.cli.output import Format
from codeq.cli.profiles import ConfigFile, ProfileError
from codeq.client import Client
from codeq.client.http import DEFAULT_BASE_URL

Need = Literal["producer", "worker", "admin"]
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass
class State:
    profile_name: str | None = None
    base_url_flag: str | None = None
    producer_token_flag: str | None = None
    worker_token_flag: str | None = None
    admin_flag: bool = False
    output: Format = Format.table
    data_dir_flag: Path | None = None
    _minted: dict[str, str] = field(default_factory=dict)

    @cached_property
    def config(self) -> ConfigFile:
        try:
            return ConfigFile.load()
        except ProfileError as exc:
            raise output.fail(str(exc)) from None

    @property
    def current_profile(self) -> str:
        return self.profile_name or self.config.current

    @property
    def profile(self) -> dict[str, Any]:
        return self.config.profiles.get(self.current_profile, {})

    @property
    def base_url(self) -> str:
        return (self.base_url_flag or self.profile.get("baseUrl") or DEFAULT_BASE_URL).rstrip("/")

    @property
    def admin(self) -> bool:
        return self.admin_flag or bool(self.profile.get("admin"))

    @property
    def data_dir(self) -> Path:
        from codeq.core.config import default_data_dir

        configured = self.data_dir_flag or self.profile.get("dataDir")
        return Path(configured).expanduser() if configured else default_data_dir()

    def fmt(self, override: Format | None) -> Format:
        """The output format: a command's own ``-o`` wins over the global one."""
        if override is not None:
            self.output = override
        return self.output

    # -- tokens ----------------------------------------------------------------
    def configured_token(self, kind: Literal["producer", "worker"]) -> str | None:
        if kind == "producer":
            return self.producer_token_flag or self.profile.get("producerToken")
        return self.worker_token_flag or self.profile.get("workerToken")

    def _dev_token(self, role: Need, events: Sequence[str] | None) -> str | None:
        """A dev token, when the server is local and its data dir holds a dev key."""
        from codeq import devkeys

        host = urlsplit(self.base_url).hostname or ""
        if host not in LOCAL_HOSTS or not (self.data_dir / devkeys.KEY_FILE).is_file():
            return None
        if role not in self._minted:
            sub = f"cli-{socket.gethostname()}-{os.getpid()}" if role == "worker" else None
            self._minted[role] = devkeys.mint_token(self.data_dir, role, sub=sub,
                                                    events=tuple(events or ("*",)))
            output.say(f"codeq: no {role} token configured; using a dev token minted with the "
                       f"dev key in {self.data_dir}")
        return self._minted[role]

    def client(self, need: Need = "producer", *, events: Sequence[str] | None = None,
               retries: int = 2) -> Client:
        """A client for ``need``: producer, worker, or admin routes."""
        producer = self.configured_token("producer")
        worker = self.configured_token("worker")
        if need == "admin" and not producer:
            producer = self._dev_token("admin", None)
        elif need == "producer" and not producer:
            producer = self._dev_token("producer", None)
        elif need == "worker" and not worker:
            worker = self._dev_token("worker", events)
        return Client(self.base_url, producer_token=producer, worker_token=worker,
                      admin=self.admin, retries=retries)


def get(ctx: typer.Context) -> State:
    """The state of this invocation (set by the root callback)."""
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = ctx.find_root().obj = State()
    return state
