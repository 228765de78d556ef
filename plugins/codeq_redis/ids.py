"""Where a task's keys live: the slot of its id (see ``docs/storage.md``, "Finding a task by id alone").

Ids made by codeq carry their command's cluster slot (``codeq.core.ids``).
A *foreign* id, one without that hint (a random UUID made by an older store),
is placed by its own text on a single server (the CRC16 of the id, as it
always was), and on a cluster in its command's slot, which the index hash
``FOREIGN_IDS`` records when the task is restored. Only lookups of a foreign
id by the id alone on a cluster read the index, once per process and id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TypeVar, cast

from codeq.core.ids import command_slot, hinted_slot, key_slot
from codeq_redis.connection import Client
from codeq_redis.keys import FOREIGN_IDS

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Put ``key`` in a cache of at most ``limit`` entries, dropping the oldest when full
    (``popitem``: a plain dict would scan past its deleted entries on every eviction)."""
    if key not in cache and len(cache) >= limit:
        cache.popitem(last=False)
    cache[key] = value


class TaskSlots:
    """The one resolver of task id -> slot, with the foreign ids this process looked up."""

    def __init__(self, *, cluster: bool, limit: int) -> None:
        self.cluster = cluster
        self._limit = limit
        self._foreign: OrderedDict[str, int] = OrderedDict()

    def is_foreign(self, task_id: str) -> bool:
        """A foreign id that only the index can place (only on a cluster)."""
        return self.cluster and hinted_slot(task_id) is None

    def slot(self, task_id: str, command: str | None = None) -> int:
        """The slot of the task's keys; pass the task's ``command`` when it is known.

        A foreign id on a cluster that was never resolved gets the CRC16 of its
        text, where nothing of it lives: reads find no task.
        """
        hinted = hinted_slot(task_id)
        if hinted is not None:
            return hinted
        if not self.cluster:
            return key_slot(task_id)
        if command is not None:
            return command_slot(command)
        return self._foreign.get(task_id, key_slot(task_id))

    async def resolve(self, client: Client, task_ids: Iterable[str]) -> None:
        """Look up the foreign ids this process has not placed yet (one ``HMGET``, if any)."""
        missing = [i for i in dict.fromkeys(task_ids)
                   if self.is_foreign(i) and i not in self._foreign]
        if not missing:
            return
        found = cast(list[str | None], await client.hmget(FOREIGN_IDS, missing))
        for task_id, slot in zip(missing, found, strict=True):
            if slot is not None:
                remember(self._foreign, task_id, int(slot), self._limit)

    async def record(self, client: Client, placed: Sequence[tuple[str, str]]) -> set[str]:
        """Record ``(id, command)`` of foreign ids about to be restored; before the task is
        written, so no stored task is ever missing from the index.

        Returns the ids the index holds already for another slot: a task of another
        command has that id, so the restore is refused as a duplicate.
        """
        wanted = {task_id: command_slot(command) for task_id, command in placed
                  if self.is_foreign(task_id)}
        if not wanted:
            return set()
        pipe = client.pipeline(transaction=False)
        for task_id, slot in wanted.items():
            pipe.hsetnx(FOREIGN_IDS, task_id, str(slot))
            pipe.hget(FOREIGN_IDS, task_id)
        stored = (await pipe.execute())[1::2]
        taken = set()
        for (task_id, slot), held in zip(wanted.items(), stored, strict=True):
            if int(held) == slot:
                remember(self._foreign, task_id, slot, self._limit)
            else:
                taken.add(task_id)
        return taken

    async def forget(self, client: Client, task_ids: Iterable[str]) -> None:
        """Drop the index entries of deleted tasks (after the delete: a crash in between
        leaves an entry that points at nothing, never a task that cannot be found)."""
        foreign = [i for i in task_ids if self.is_foreign(i)]
        if foreign:
            await client.hdel(FOREIGN_IDS, *foreign)
            for task_id in foreign:
                self._foreign.pop(task_id, None)
