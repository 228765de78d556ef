"""The Lua scripts, loaded with ``importlib.resources`` and run with EVALSHA.

Each script is ``_lib.lua`` plus constants plus its own file; its SHA1 is known
locally, so the first call is already an EVALSHA. ``Scripts.load`` registers
them all once (on every primary of a cluster); a NOSCRIPT reply (a restarted
or failed-over server) loads the script again and retries once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from codeq.core.domain import HISTORY_LIMIT, MAX_PRIORITY, MIN_PRIORITY
from codeq_redis.wire import Wire

#: Width of one priority tier in a ready-set score (see ``_lib.lua``).
TIER = 900_000_000_000_000
#: Priority tiers of a ready set: tier ``9 - priority`` holds the tasks of that priority.
TIERS = MAX_PRIORITY - MIN_PRIORITY + 1
#: Units per second of a ready-set sequence: ``next_seq`` in ``_lib.lua`` counts 10 µs steps.
SEQ_PER_SECOND = 100_000
NAMES = ("create", "claim", "heartbeat", "requeue", "complete", "cancel", "promote", "redrive",
         "cleanup", "index_lower", "restore", "outbox_take", "outbox_attempted", "outbox_put",
         "subscription_save", "subscription_renew", "subscription_delete",
         "subscriptions_sweep", "mark_notified")

#: What runs scripts: redis-py's clients, or the store's own connection on one server.
Client = Redis | RedisCluster | Wire


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def _read(name: str) -> str:
    return (resources.files("codeq_redis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def _build(name: str) -> Script:
    preamble = f"local HISTORY_LIMIT = {HISTORY_LIMIT}\nlocal TIER = {TIER}\n"
    source = preamble + _read("_lib") + "\n" + _read(name)
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


class Scripts:
    def __init__(self) -> None:
        self.by_name = {name: _build(name) for name in NAMES}

    async def load(self, client: Client) -> None:
        for script in self.by_name.values():
            await client.script_load(script.source)

    async def run(self, client: Client, name: str, keys: list[str], args: list[str]) -> Any:
        script = self.by_name[name]
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(keys), *keys, *args)
