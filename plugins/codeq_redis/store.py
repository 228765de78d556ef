"""``RedisStorage``: the storage contract on Redis, Valkey, KVRocks and Redis Cluster.

This class is the only code that talks to Redis. Every state transition is
one Lua script (``lua/*.lua``, run by ``Scripts``); everything else here is
reads, choosing candidates for a script, and turning script replies into
domain values and errors. See ``docs/storage.md`` for the keyspace.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from codeq.core import lifecycle
from codeq.core.domain import (
    COMMAND_PATTERN,
    Callback,
    Outcome,
    Page,
    QueueStats,
    ResultRecord,
    Status,
    Subscription,
    Task,
    new_id,
)
from codeq.core.errors import CodeqError, ConfigError, Conflict, Forbidden, InvalidInput, NotFound
from codeq.core.ids import command_slot, hinted_slot, key_slot
from codeq.core.ids import new_task_id as new_hinted_id
from codeq.core.storage import Completion, Storage, cursor_number
from codeq_redis.codec import (
    callback_json,
    decode_callback,
    decode_dumped,
    decode_result,
    decode_subscription,
    decode_task,
    dumps,
    history_entry,
    num,
    result_json,
    subscription_json,
    task_fields,
)
from codeq_redis.connection import Client, Target, translate_errors
from codeq_redis.ids import TaskSlots, remember
from codeq_redis.keys import (
    COMMANDS,
    DELAYED_INDEX,
    LEASES_INDEX,
    NOTIFIED,
    OUTBOX_SLOTS,
    READY_CHANNEL,
    SUBSCRIPTION_EXPIRY,
    SUBSCRIPTIONS,
    TURNS,
    OutboxKeys,
    QueueKeys,
    TaskKeys,
    hash_tag,
    slot_tag,
)
from codeq_redis.listener import ReadyListener
from codeq_redis.scripts import SEQ_PER_SECOND, TIER, TIERS, Scripts
from codeq_redis.wire import Wire

#: Extra ready candidates passed to a claim script beyond what it should take, so that a
#: claim racing another one still finds work without a second peek.
CLAIM_SLACK = 4
#: Best ready tasks a claim answers at least, for the next claim to take without peeking
#: (claims arriving together at once want more than the one before them).
CHAIN_HEADS = 16
#: How often a peek-then-take step (claim, taking callbacks) peeks again when raced.
RACE_ROUNDS = 8
#: Tasks one batch of claims that arrived together may ask for (the server's batch limit).
MAX_CLAIM_TOGETHER = 1000
#: A claim for at least this many tasks (on one server) has the script answer the ids and
#: lease ids it gave, and reads the tasks in one pipeline after it: read inside a script, a
#: task costs Redis about four times as much CPU. Smaller claims save the round trip.
READ_AFTER_CLAIM = 8
PROMOTE_ON_CLAIM = 100
#: How often the due indexes are rebuilt from every command's queues (a safety net for a
#: process that died between a transition and its index update).
RESCAN_SECONDS = 30.0
SCRIPT_BATCH = 500
#: Tasks one create or complete script call takes at most. A batch's tasks of one command
#: share calls, so the call's own cost and the writes to the command's queues are paid
#: once per call, and a call holds Redis for about a millisecond.
GROUP_SIZE = 100
#: Replies per command of ``RedisStorage._stats_calls``.
STATS_REPLIES = 7 + TIERS
#: One step of the Lua sequence (``next_seq``: 10 µs units).
RESTORE_STEP = 1 / SEQ_PER_SECOND
#: Ids whose command this process remembers: those it handed out (claim, reaper) or read,
#: so the heartbeats and results that follow a claim skip one ``HGET``. Not those it
#: created or restored, so holding a deep queue costs no memory here.
COMMAND_CACHE = 16384
#: Slots whose scripts run at the same time when a batch spans a cluster.
CLUSTER_CONCURRENCY = 32


def _optional(value: str | None) -> str:
    """Optional script argument: '' for None, '=' + value otherwise."""
    return "" if value is None else "=" + value


@dataclass(frozen=True, slots=True)
class _Part:
    """One task's keys and arguments in a script call shared by the tasks of its group."""

    group: Hashable
    keys: list[str]
    args: list[str]


@dataclass(slots=True)
class _Claimer:
    """One claim: for whom, until when, how many tasks; and where its answer goes."""

    worker_id: str
    lease_until: str
    count: int
    answer: asyncio.Future[list[Task]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    def taking(self, count: int) -> _Claimer:
        return _Claimer(self.worker_id, self.lease_until, count, self.answer)


def _still_wanting(claimers: Sequence[_Claimer], served: int) -> list[_Claimer]:
    """The claimers the first ``served`` tasks (handed out in order) left wanting more."""
    left: list[_Claimer] = []
    for claimer in claimers:
        if served >= claimer.count:
            served -= claimer.count
        else:
            left.append(claimer.taking(claimer.count - served) if served else claimer)
            served = 0
    return left


def _shares(claimers: Sequence[_Claimer], tasks: list[Task]) -> list[list[Task]]:
    """The tasks of each claimer: handed out in order, each taking up to its count."""
    shares, start = [], 0
    for claimer in claimers:
        shares.append(tasks[start:start + claimer.count])
        start += claimer.count
    return shares


@dataclass(slots=True)
class _Head:
    """What a claim sees of one command before it runs the claim script."""

    command: str
    ready: list[tuple[str, float]]
    due: bool
    paused: bool


class RedisStorage(Storage):
    name = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.target = Target.parse(url)
        self.cluster = self.target.cluster
        self._client: Client | None = None
        #: Script calls on one server go over their own pipelined connection.
        self._wire: Wire | None = None
        self._scripts = Scripts()
        self._listener: ReadyListener | None = None
        self._last_restore = 0.0
        self._node_clients: list[Redis] = []
        self._registered: set[str] = set()
        self._outbox_registered: set[int] = set()
        self._known: set[str] = set()
        self._command_of: OrderedDict[str, str] = OrderedDict()
        self._slots = TaskSlots(cluster=self.cluster, limit=COMMAND_CACHE)
        self._rescanned = float("-inf")
        #: Per command, the task whose arrival made its ready set non-empty, kept for the
        #: next claim to take without peeking (``_claim_lone``).
        self._lone: dict[str, str] = {}
        #: Per command, the best ready tasks as the last claim left them: the next claim
        #: tries them without peeking.
        self._next_heads: dict[str, list[str]] = {}
        #: Claims of one command waiting for the one on its way, and the task that runs
        #: them (``_claim_together``), by command.
        self._claims_waiting: dict[str, list[tuple[_Claimer, float]]] = {}
        self._claim_drainers: dict[str, asyncio.Task[None]] = {}

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("RedisStorage.open() was not called")
        return self._client

    # -- lifecycle of the store ------------------------------------------------
    @translate_errors
    async def open(self) -> None:
        slot_tag(0)  # build the slot-tag table (~0.2 s) now, not on the first request
        self._client = self.target.connect()
        try:
            await self._client.ping()
        except ResponseError as exc:  # the URL's database or credentials, refused at connect
            raise ConfigError("storage", f"the Redis server refused this URL's settings: "
                                         f"{exc}") from None
        await self._scripts.load(self._client)
        self._wire = self.target.wire(self._client)
        if isinstance(self._client, RedisCluster):
            await self._client.initialize()
            self._node_clients = [self.target.node_client(n.host, int(n.port))
                                  for n in self._client.get_primaries()]
            subscribers = self._node_clients
        else:
            subscribers = [self._client]
        self._listener = ReadyListener(subscribers, READY_CHANNEL, self._on_ready,
                                       self.ready.notify_all)
        await self._listener.start()
        await self._all_commands()

    async def close(self) -> None:
        drainers = list(self._claim_drainers.values())
        for drainer in drainers:
            drainer.cancel()
        await asyncio.gather(*drainers, return_exceptions=True)
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        for client in self._node_clients:
            await client.aclose()
        self._node_clients = []
        if self._wire is not None:
            await self._wire.aclose()
            self._wire = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _on_ready(self, message: str) -> None:
        """``<command> <task id>``: that task made the command's ready set non-empty."""
        command, _, task_id = message.partition(" ")
        self._known.add(command)
        if task_id and task_id not in self._command_of:  # else claimed here already
            self._lone[command] = task_id
        self.ready.notify(command)

    @translate_errors
    async def ping(self) -> None:
        await self.client.ping()

    def new_task_id(self, command: str) -> str:
        return new_hinted_id(command)

    # -- helpers -------------------------------------------------------------------
    async def _run(self, name: str, keys: list[str], args: list[str]) -> Any:
        return await self._scripts.run(self._wire or self.client, name, keys, args)

    async def _run_many(self, calls: Sequence[tuple[str, list[str], list[str]]]) -> list[Any]:
        """Run scripts in order within a slot, in one round trip where the client allows.

        One call: a plain EVALSHA. One server: one pipeline (a NOSCRIPT reply is
        re-run). A cluster client refuses EVALSHA in pipelines, so slots run
        concurrently, each in order.
        """
        if len(calls) == 1:
            return [await self._run(*calls[0])]
        if self._wire is None:
            return await self._run_by_slot(calls)
        by_name = self._scripts.by_name
        results = await self._wire.pipeline([("EVALSHA", by_name[name].sha, len(keys), *keys, *args)
                                             for name, keys, args in calls])
        for i, reply in enumerate(results):
            if isinstance(reply, NoScriptError):
                results[i] = await self._run(*calls[i])
            elif isinstance(reply, Exception):
                raise reply
        return results

    async def _run_by_slot(self, calls: Sequence[tuple[str, list[str], list[str]]]) -> list[Any]:
        results: list[Any] = [None] * len(calls)
        by_slot: dict[int, list[int]] = {}
        for i, (_, keys, _) in enumerate(calls):
            by_slot.setdefault(key_slot(hash_tag(keys[0])), []).append(i)
        gate = asyncio.Semaphore(CLUSTER_CONCURRENCY)

        async def run_slot(indexes: list[int]) -> None:
            async with gate:
                for i in indexes:
                    results[i] = await self._run(*calls[i])

        await asyncio.gather(*(run_slot(indexes) for indexes in by_slot.values()))
        return results

    async def _run_grouped(self, name: str, parts: Sequence[_Part],
                           common: Callable[[Any], tuple[list[str], list[str]]]) -> list[Any]:
        """Script ``name`` once per group of parts, at most ``GROUP_SIZE`` a call: the keys
        and arguments ``common`` gives for the group, then each part's, in order. Returns
        the reply for each part, in the order given."""
        groups: dict[Hashable, list[int]] = {}
        for i, part in enumerate(parts):
            groups.setdefault(part.group, []).append(i)
        calls: list[tuple[str, list[str], list[str]]] = []
        members: list[list[int]] = []
        for group, indexes in groups.items():
            keys, args = common(group)
            for start in range(0, len(indexes), GROUP_SIZE):
                chunk = indexes[start:start + GROUP_SIZE]
                calls.append((name, [*keys, *(k for i in chunk for k in parts[i].keys)],
                              [*args, *(a for i in chunk for a in parts[i].args)]))
                members.append(chunk)
        out: list[Any] = [None] * len(parts)
        for chunk, replies in zip(members, await self._run_many(calls), strict=True):
            for i, reply in zip(chunk, replies, strict=True):
                out[i] = reply
        return out

    def _emit(self, commands: Iterable[str]) -> None:
        """Announce commands whose ready queue this process's step took from empty to non-empty."""
        for command in commands:
            self.available.emit(command)

    def _task_keys(self, task_id: str, command: str | None = None) -> TaskKeys:
        """Pass the task's command when known; without it a foreign id on a cluster must
        have been ``_slots.resolve``d first."""
        return TaskKeys(task_id, self._slots.slot(task_id, command))

    def _outbox_keys(self, task_id: str, command: str | None = None) -> OutboxKeys:
        return OutboxKeys(self._slots.slot(task_id, command))

    def _remember(self, task_id: str, command: str) -> None:
        remember(self._command_of, task_id, command, COMMAND_CACHE)

    async def _command(self, task_id: str) -> str:
        """The command of a task (immutable, so cached); NotFound for an unknown id."""
        command = self._command_of.get(task_id)
        if command is None:
            await self._slots.resolve(self.client, [task_id])
            command = cast(str | None,
                           await self.client.hget(self._task_keys(task_id).task, "command"))
            if command is None:
                raise NotFound(f"no task with id {task_id}")
            self._remember(task_id, command)
        return command

    async def _all_commands(self) -> list[str]:
        names = cast(set[str], await self.client.smembers(COMMANDS))
        self._known |= names
        return sorted(names)

    async def _by_score(self, key: str, low: str, high: str, limit: int
                        ) -> list[tuple[str, float]]:
        """``ZRANGEBYSCORE key low high WITHSCORES LIMIT 0 limit``."""
        if limit <= 0:
            return []
        return cast(list[tuple[str, float]], await self.client.zrangebyscore(
            key, low, high, start=0, num=limit, withscores=True))

    async def _register(self, commands: Iterable[str], outbox_slots: Iterable[int] = ()) -> None:
        """Record commands and outbox slots in their global sets, before the first script
        that uses them (once per process: the sets only grow)."""
        new = set(commands) - self._registered
        slots = set(outbox_slots) - self._outbox_registered
        if not new and not slots:
            return
        pipe = self.client.pipeline(transaction=False)
        if new:
            pipe.sadd(COMMANDS, *new)
        if slots:
            pipe.sadd(OUTBOX_SLOTS, *map(str, slots))
        await pipe.execute()
        self._registered |= new
        self._known |= new
        self._outbox_registered |= slots

    async def _register_tasks(self, tasks: Iterable[Task]) -> None:
        """Commands of the tasks, and the outbox slot of each that has a webhook."""
        tasks = list(tasks)
        await self._register((t.command for t in tasks),
                             (self._slots.slot(t.id, t.command) for t in tasks
                              if t.webhook is not None))

    async def _lower(self, index: str, command: str, score: Any) -> None:
        if score is not None:
            await self._run("index_lower", [index], [command, str(score)])

    async def _read_tasks(self, task_ids: Sequence[str]) -> list[Task | None]:
        if not task_ids:
            return []
        await self._slots.resolve(self.client, task_ids)
        stored = await self._read_stored([self._task_keys(task_id) for task_id in task_ids])
        return [decode_task(fields, history) if fields else None for fields, history in stored]

    async def _read_stored(self, tasks: Sequence[TaskKeys]
                           ) -> list[tuple[dict[str, str], list[str]]]:
        """Each task's hash (empty when it is gone) and history, in one pipeline: on the
        store's own connection when there is one, else on redis-py's."""
        if self._wire is None:
            pipe = self.client.pipeline(transaction=False)
            for t in tasks:
                pipe.hgetall(t.task)
                pipe.lrange(t.history, 0, -1)
            replies = await pipe.execute()
            return list(zip(replies[::2], replies[1::2], strict=True))
        replies = await self._wire.pipeline(
            [c for t in tasks for c in (("HGETALL", t.task), ("LRANGE", t.history, 0, -1))])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return [(dict(zip(flat[::2], flat[1::2], strict=True)), history)
                for flat, history in zip(replies[::2], replies[1::2], strict=True)]

    def _refuse(self, reply: Sequence[Any], task_id: str, lease_id: str | None) -> None:
        """Raise the domain error a script answered with (mirrors ``lifecycle.check_lease``)."""
        code = reply[0]
        if code == "NOTFOUND":
            raise NotFound(f"no task with id {task_id}")
        if code == "STATE":
            raise Conflict(f"task {task_id} is {reply[1]}, not IN_PROGRESS", status=reply[1])
        if code == "FORBIDDEN":
            raise Forbidden(f"task {task_id} is leased by another worker")
        if code == "LEASE":
            raise Conflict(f"leaseId {lease_id} is not the current lease of task {task_id}; "
                           "the lease expired and the task was delivered again")
        raise RuntimeError(f"unexpected script reply {reply!r}")

    # -- producers -----------------------------------------------------------------
    def _check_slot(self, task: Task, *, restoring: bool = False) -> None:
        """On a cluster a task's keys must share its command's slot: an id with a slot hint
        must carry that one, and an id without one comes only from a restore, which records
        its place (``TaskSlots.record``)."""
        if not self.cluster or (restoring and hinted_slot(task.id) is None):
            return
        if hinted_slot(task.id) != command_slot(task.command):
            raise InvalidInput(f"task id {task.id} does not carry the cluster slot of command "
                               f"{task.command}; ids must come from new_task_id")

    def _create_part(self, task: Task, now: float) -> _Part:
        self._check_slot(task)
        t = self._task_keys(task.id, task.command)
        delayed = task.visible_at is not None and task.visible_at > now
        args = [task.id, str(task.priority),
                num(task.visible_at) if delayed and task.visible_at is not None else "",
                _optional(task.idempotency_key), dumps(task_fields(task)),
                str(len(task.history)), *(history_entry(h) for h in task.history)]
        return _Part(task.command, [t.task, t.history], args)

    @staticmethod
    def _create_common(command: str, now: float) -> tuple[list[str], list[str]]:
        q = QueueKeys(command)
        return [q.ready, q.delayed, q.all, q.idem, q.seq], [num(now), command, READY_CHANNEL]

    async def _created(self, task: Task, reply: list[Any]) -> tuple[Task, bool]:
        """The result of one create script; ``available`` is left to the caller."""
        code = reply[0]
        if code == "EXISTS":
            existing = (await self._read_tasks([reply[1]]))[0]
            if existing is None:
                raise Conflict(f"idempotencyKey {task.idempotency_key!r} is being reused while "
                               "its task is deleted; retry", taskId=reply[1])
            return existing, False
        if code == "DUPLICATE":
            raise Conflict(f"a task with id {task.id} exists already")
        if code == "READY":
            if reply[1] == 1:
                self._lone[task.command] = task.id
            self.ready.notify(task.command)
        else:
            await self._lower(DELAYED_INDEX, task.command, reply[1])
        return task, True  # the caller's own object, as stored: nothing here keeps it

    @translate_errors
    async def create(self, task: Task, *, now: float) -> tuple[Task, bool]:
        return (await self.create_many([task], now=now))[0]

    @translate_errors
    async def create_many(self, tasks: Sequence[Task], *, now: float) -> list[tuple[Task, bool]]:
        parts = [self._create_part(task, now) for task in tasks]
        await self._register_tasks(tasks)
        replies = await self._run_grouped("create", parts,
                                          lambda command: self._create_common(command, now))
        out: list[tuple[Task, bool]] = []
        available: dict[str, None] = {}
        for task, reply in zip(tasks, replies, strict=True):
            out.append(await self._created(task, reply))
            if reply[0] == "READY" and reply[1] == 1:
                available[task.command] = None
        self._emit(available)
        return out

    @translate_errors
    async def get(self, task_id: str) -> Task | None:
        task = (await self._read_tasks([task_id]))[0]
        if task is not None:
            self._remember(task.id, task.command)
        return task

    @translate_errors
    async def get_result(self, task_id: str) -> ResultRecord | None:
        await self._slots.resolve(self.client, [task_id])
        text = cast(str | None, await self.client.get(self._task_keys(task_id).result))
        return None if text is None else decode_result(text)

    @translate_errors
    async def cancel(self, task_id: str, *, now: float) -> Task:
        command = await self._command(task_id)
        q, t = QueueKeys(command), self._task_keys(task_id, command)
        reply = await self._run("cancel", [t.task, t.history, q.ready, q.delayed, q.done],
                                [num(now), task_id])
        if reply[0] == "STATE":
            raise Conflict(f"task {task_id} is already {reply[1]}", status=reply[1])
        if reply[0] != "OK":
            self._refuse(reply, task_id, None)
        return decode_dumped(reply[1])

    # -- listing ---------------------------------------------------------------------
    @staticmethod
    def _parse_cursor(cursor: str | None) -> tuple[int, str] | None:
        """Listing cursors are ``<seq>.<command>`` of the last task returned."""
        if cursor is None:
            return None
        seq, _, command = cursor.partition(".")
        number = cursor_number(seq)
        if number is None or not COMMAND_PATTERN.match(command):
            raise InvalidInput(f"cursor {cursor[:64]!r} was not produced by this store")
        return number, command

    async def _list_command(self, command: str, status: Status | None, after: tuple[int, str] | None,
                            want: int) -> list[tuple[int, str, Task]]:
        """Up to ``want`` tasks of ``command`` after the cursor, in creation order."""
        q = QueueKeys(command)
        if after is None:
            low = "-inf"
        else:
            low = str(after[0]) if command > after[1] else f"({after[0]}"
        found: list[tuple[int, str, Task]] = []
        batch = max(want, 100)
        while len(found) < want:
            entries = await self._by_score(q.all, low, "+inf", batch)
            if not entries:
                break
            tasks = await self._read_tasks([task_id for task_id, _ in entries])
            for (_, score), task in zip(entries, tasks, strict=True):
                if task is not None and (status is None or task.status is status):
                    found.append((int(score), command, task))
            low = f"({int(entries[-1][1])}"
            if len(entries) < batch:
                break
        return found[:want]

    @translate_errors
    async def list_tasks(self, *, command: str | None, status: Status | None, limit: int,
                         cursor: str | None) -> Page:
        after = self._parse_cursor(cursor)
        names = [command] if command is not None else await self._all_commands()
        rows: list[tuple[int, str, Task]] = []
        for name in names:
            rows.extend(await self._list_command(name, status, after, limit + 1))
        rows.sort(key=lambda row: (row[0], row[1]))
        page, more = rows[:limit], len(rows) > limit
        next_cursor = f"{page[-1][0]}.{page[-1][1]}" if more and page else None
        return Page([task for _, _, task in page], next_cursor)

    # -- workers ---------------------------------------------------------------------
    async def _claim_names(self, commands: Sequence[str] | None) -> list[str]:
        if commands is not None:
            return list(dict.fromkeys(commands))
        if not self._known:
            await self._all_commands()
        return sorted(self._known)

    async def _peek(self, names: list[str], depth: int, now: float, *, fresh: bool
                    ) -> list[_Head]:
        """Heads of the ready sets, due delayed work and pause flags; one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            q = QueueKeys(name)
            pipe.zrange(q.ready, 0, depth - 1, withscores=True)
            pipe.zrangebyscore(q.delayed, "-inf", num(now), start=0, num=1)
            pipe.exists(q.paused)
        if fresh:
            pipe.smembers(COMMANDS)
        replies = await pipe.execute()
        if fresh:
            self._known.update(replies.pop())
        return [_Head(name, replies[3 * i], bool(replies[3 * i + 1]), bool(replies[3 * i + 2]))
                for i, name in enumerate(names)]

    def _claim_calls(self, command: str, candidates: list[str], claimers: Sequence[_Claimer],
                     now: float, *, lone: bool = False) -> list[tuple[str, list[str], list[str]]]:
        """The claim script and, in the same round trip, the leases index lowered to the
        earliest of these leases (a no-op unless it is the command's earliest; a claim that
        took nothing only makes the reaper look early)."""
        q = QueueKeys(command)
        keys = [q.ready, q.leases, q.paused, q.delayed]
        wanted = sum(claimer.count for claimer in claimers)
        as_ids = self._wire is not None and wanted >= READ_AFTER_CLAIM
        args = [num(now), "1" if lone else "", str(max(wanted, CHAIN_HEADS) + CLAIM_SLACK),
                "1" if as_ids else "", str(len(claimers))]
        for claimer in claimers:
            args += [claimer.worker_id, claimer.lease_until, str(claimer.count)]
        for task_id in candidates:
            t = self._task_keys(task_id, command)
            keys += [t.task, t.history]
            args += [task_id, new_id()]
        earliest = min((claimer.lease_until for claimer in claimers), key=float)
        return [("claim", keys, args), ("index_lower", [LEASES_INDEX], [command, earliest])]

    @translate_errors
    async def claim(self, commands: Sequence[str] | None, *, worker_id: str,
                    lease_seconds: float, count: int, now: float) -> list[Task]:
        """Peek every command's head, pick the best across them, claim on their shards.

        A candidate taken by a concurrent claim is skipped by the script; when a
        round got fewer tasks than it aimed for, the next round peeks again.

        Claims of one command that arrive while one is on its way to Redis wait and
        then go together, in one peek and one script (``_claim_together``): claims of
        one process never race each other for the same head.

        A claim for one command whose queue just went from empty to one task (an idle
        worker woken by a create) claims that task without peeking, and so does a
        claim after another (workers taking a backlog): it tries the best tasks the
        previous claim answered, those of them another process did not take meanwhile.
        """
        names = await self._claim_names(commands)
        claimer = _Claimer(worker_id, num(now + lease_seconds), count)
        if commands is None or len(names) != 1:
            return await self._claim(names, commands, [claimer], now)
        return await self._claim_together(names[0], claimer, now)

    async def _claim_together(self, command: str, claimer: _Claimer, now: float
                              ) -> list[Task]:
        waiting = self._claims_waiting.setdefault(command, [])
        waiting.append((claimer, now))
        if command not in self._claim_drainers:
            self._claim_drainers[command] = asyncio.create_task(self._drain_claims(command))
        return await claimer.answer

    async def _drain_claims(self, command: str) -> None:
        """Run the waiting claims of ``command``, those that arrived together at once,
        until none waits; each claimer gets its answer or the error of its batch."""
        batch: list[_Claimer] = []
        try:
            while waiting := self._claims_waiting.pop(command, None):
                batch, wanted, now = [], 0, waiting[0][1]
                for claimer, arrived_now in waiting:
                    if claimer.answer.done():
                        continue  # its request is gone
                    if wanted >= MAX_CLAIM_TOGETHER:  # the next batch's
                        self._claims_waiting.setdefault(command, []).append(
                            (claimer, arrived_now))
                        continue
                    batch.append(claimer)
                    wanted += claimer.count
                if not batch:
                    continue
                created = self._lone.pop(command, None)
                lone = ([created] if created
                        else self._next_heads.pop(command, [])[:wanted + CLAIM_SLACK])
                try:
                    tasks = await self._claim([command], [command], batch, now, lone=lone,
                                              chain=True)
                except Exception as exc:  # noqa: BLE001 -- each claimer raises it
                    for claimer in batch:
                        if not claimer.answer.done():
                            claimer.answer.set_exception(exc)
                    continue
                for claimer, share in zip(batch, _shares(batch, tasks), strict=True):
                    if not claimer.answer.done():
                        claimer.answer.set_result(share)
        finally:  # stopped (the store closes): no claim is left waiting for ever
            del self._claim_drainers[command]
            for claimer in [*batch, *(c for c, _ in self._claims_waiting.pop(command, []))]:
                if not claimer.answer.done():
                    claimer.answer.cancel()

    async def _claim(self, names: list[str], commands: Sequence[str] | None,
                     claimers: list[_Claimer], now: float, *, lone: list[str] | None = None,
                     chain: bool = False) -> list[Task]:
        """Tasks for ``claimers`` in order, each taking its count of the best ones left;
        with ``chain``, the best tasks left are remembered for the next claim."""
        claimed: list[Task] = []
        if lone:
            answer = await self._claim_lone(names[0], lone, claimers, now, chain=chain)
            if answer is not None:
                claimed, more = answer
                if not more or len(claimed) >= sum(c.count for c in claimers):
                    return claimed
        for round_ in range(RACE_ROUNDS):
            left = _still_wanting(claimers, len(claimed))
            want = sum(claimer.count for claimer in left)
            if want <= 0 or not names:
                break
            heads = await self._peek(names, want + CLAIM_SLACK, now,
                                     fresh=commands is None and round_ == 0)
            if commands is None and len(self._known) > len(names):
                names = sorted(self._known)
                continue
            heads = [h for h in heads if not h.paused]
            due = [h.command for h in heads if h.due]
            if due:
                for command in due:
                    due_ids = await self._by_score(QueueKeys(command).delayed, "-inf", num(now),
                                                   PROMOTE_ON_CLAIM)
                    await self._promote(command, now, [task_id for task_id, _ in due_ids])
                continue
            got, raced = await self._claim_round(heads, want, left, now, chain=chain)
            claimed += got
            if not raced:
                break
        return claimed

    async def _claim_lone(self, command: str, candidates: list[str], claimers: list[_Claimer],
                          now: float, *, chain: bool) -> tuple[list[Task], bool] | None:
        """Claim the task that made ``command``'s ready set non-empty, or the best tasks a
        claim left, without peeking first (one round trip instead of two): the tasks, and
        whether others are ready; None when they are no longer the ones to claim."""
        reply = (await self._run_many(self._claim_calls(command, candidates, claimers, now,
                                                        lone=True)))[0]
        if reply[0] == "STALE":
            return None
        return (await self._claimed([(command, reply)], chain=chain))[0], bool(reply[0])

    async def _claimed(self, replies: Sequence[tuple[str, list[Any]]], *, chain: bool
                       ) -> list[list[Task]]:
        """The tasks of claim scripts' replies (``(command, reply)`` each), one list per
        reply; with ``chain``, the best tasks a reply answered become its command's next
        candidates."""
        # an item is a task as dumped ([fields, history]) or, for a batch, [id, lease id]
        leased = [(command, item) for command, reply in replies for item in reply[1:]
                  if isinstance(item[0], str)]
        read = iter(await self._read_leased(leased))
        out = []
        for command, reply in replies:
            if chain:
                if reply[0]:
                    self._next_heads[command] = reply[0]
                else:
                    self._next_heads.pop(command, None)
            tasks = []
            for item in reply[1:]:
                task = next(read) if isinstance(item[0], str) else decode_dumped(item)
                if task is None:
                    continue
                tasks.append(task)
                self._remember(task.id, command)
                if self._lone.get(command) == task.id:
                    # its create's message came while this claim was on its way: the task is
                    # taken, so it is no hint for the next claim (it would go STALE, then peek)
                    del self._lone[command]
            out.append(tasks)
        return out

    async def _read_leased(self, leased: Sequence[tuple[str, list[str]]]) -> list[Task | None]:
        """Tasks a claim script just leased, ``(command, [id, lease id])`` each, in one
        pipeline; None for one that is no longer under that lease (deleted, or expired and
        claimed again in between: the lease is not this claim's to hand out)."""
        if not leased:
            return []
        stored = await self._read_stored([self._task_keys(task_id, command)
                                          for command, (task_id, _) in leased])
        return [decode_task(fields, history) if fields.get("lease_id") == lease else None
                for (_, (_, lease)), (fields, history) in zip(leased, stored, strict=True)]

    async def _claim_round(self, heads: list[_Head], want: int, claimers: list[_Claimer],
                           now: float, *, chain: bool) -> tuple[list[Task], bool]:
        best = sorted((score, h.command, task_id) for h in heads for task_id, score in h.ready)
        take: dict[str, int] = {}
        for _, command, _ in best[:want]:
            take[command] = take.get(command, 0) + 1
        chosen = [h for h in heads if h.command in take]
        calls = [call for h in chosen
                 for call in self._claim_calls(
                     h.command, [task_id for task_id, _ in h.ready],
                     claimers if len(claimers) > 1 else [claimers[0].taking(take[h.command])],
                     now)]
        replies = (await self._run_many(calls))[::2]
        claimed = await self._claimed(
            [(h.command, reply) for h, reply in zip(chosen, replies, strict=True)], chain=chain)
        got: list[Task] = []
        raced = False
        for h, tasks in zip(chosen, claimed, strict=True):
            raced |= len(tasks) < take[h.command]
            got += tasks
        rank = {task_id: score for h in chosen for task_id, score in h.ready}
        got.sort(key=lambda task: rank[task.id])
        return got, raced

    @translate_errors
    async def heartbeat(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                        lease_seconds: float, now: float) -> Task:
        command = await self._command(task_id)
        q, t = QueueKeys(command), self._task_keys(task_id, command)
        reply = await self._run("heartbeat", [t.task, t.history, q.leases],
                                [num(now), task_id, _optional(worker_id), _optional(lease_id),
                                 num(now + lease_seconds)])
        if reply[0] != "OK":
            self._refuse(reply, task_id, lease_id)
        await self._lower(LEASES_INDEX, command, reply[1])
        return decode_dumped(reply[2])

    async def _requeue(self, task_id: str, *, mode: str, worker_id: str | None,
                       lease_id: str | None, delay_seconds: float, reason: str | None,
                       now: float) -> tuple[Task, Outcome] | None:
        command = await self._command(task_id)
        q, t = QueueKeys(command), self._task_keys(task_id, command)
        visible = num(now + delay_seconds) if delay_seconds > 0 else ""
        o = self._outbox_keys(task_id, command)
        reply = await self._run(
            "requeue", [t.task, t.history, q.leases, q.ready, q.delayed, q.dlq, q.done, q.seq,
                        o.due, o.callbacks],
            [num(now), task_id, mode, _optional(worker_id), _optional(lease_id), visible,
             _optional(reason), READY_CHANNEL, command])
        if reply[0] == "MOVED" or (mode == "expire" and reply[0] == "NOTFOUND"):
            return None
        if reply[0] not in ("REQUEUED", "DLQ", "CANCELLED"):
            self._refuse(reply, task_id, lease_id)
        outcome = Outcome.REQUEUED if reply[0] == "REQUEUED" else Outcome(reply[0].lower())
        if outcome is Outcome.REQUEUED:
            if visible:
                await self._lower(DELAYED_INDEX, command, reply[1])
            else:
                self.ready.notify(command)
                if reply[3] == 1:
                    self._emit([command])
        return decode_dumped(reply[2]), outcome

    @translate_errors
    async def abandon(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                      now: float) -> tuple[Task, Outcome]:
        done = await self._requeue(task_id, mode="abandon", worker_id=worker_id,
                                   lease_id=lease_id, delay_seconds=0, reason=None, now=now)
        assert done is not None
        return done

    @translate_errors
    async def nack(self, task_id: str, *, worker_id: str | None, lease_id: str | None,
                   delay_seconds: float, reason: str | None, now: float) -> tuple[Task, Outcome]:
        done = await self._requeue(task_id, mode="nack", worker_id=worker_id, lease_id=lease_id,
                                   delay_seconds=delay_seconds, reason=reason, now=now)
        assert done is not None
        return done

    @translate_errors
    async def complete(self, task_id: str, *, result: ResultRecord, lease_id: str | None,
                       now: float) -> tuple[ResultRecord, str | None]:
        command = await self._command(task_id)
        record, part = self._complete_part(task_id, command, result, lease_id, now)
        [reply] = await self._run_grouped("complete", [part],
                                          lambda group: self._complete_common(group, now))
        return self._completed(task_id, command, result, record, lease_id, reply)

    @translate_errors
    async def complete_many(self, items: Sequence[Completion], *, now: float
                            ) -> list[tuple[ResultRecord, str | None] | CodeqError]:
        """One pipelined round trip of ``complete.lua`` calls (after one for unknown ids)."""
        commands = await self._commands_of([task_id for task_id, _, _ in items])
        out: list[tuple[ResultRecord, str | None] | CodeqError] = []
        pending: list[tuple[int, str, ResultRecord, ResultRecord, str | None]] = []
        parts: list[_Part] = []
        for task_id, result, lease_id in items:
            if task_id not in commands:
                out.append(NotFound(f"no task with id {task_id}"))
                continue
            try:
                record, part = self._complete_part(task_id, commands[task_id], result, lease_id,
                                                   now)
            except InvalidInput as exc:  # a result this store cannot write: this item only
                out.append(exc)
                continue
            pending.append((len(out), task_id, result, record, lease_id))
            parts.append(part)
            out.append((record, None))  # until the script's reply says
        replies = await self._run_grouped("complete", parts,
                                          lambda group: self._complete_common(group, now))
        for (i, task_id, result, record, lease_id), reply in zip(pending, replies, strict=True):
            try:
                out[i] = self._completed(task_id, commands[task_id], result, record, lease_id,
                                         reply)
            except CodeqError as exc:
                out[i] = exc
        return out

    async def _commands_of(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The commands of the tasks that exist, in one round trip for ids not cached."""
        known = {i: self._command_of[i] for i in task_ids if i in self._command_of}
        unknown = [i for i in dict.fromkeys(task_ids) if i not in known]
        if unknown:
            await self._slots.resolve(self.client, unknown)
            pipe = self.client.pipeline(transaction=False)
            for task_id in unknown:
                pipe.hget(self._task_keys(task_id).task, "command")
            for task_id, command in zip(unknown, await pipe.execute(), strict=True):
                if command is not None:
                    self._remember(task_id, command)
                    known[task_id] = command
        return known

    def _complete_part(self, task_id: str, command: str, result: ResultRecord,
                       lease_id: str | None, now: float) -> tuple[ResultRecord, _Part]:
        """The stored record and the script part; tasks of one command and outbox slot
        share a call."""
        slot = self._slots.slot(task_id, command)
        t = TaskKeys(task_id, slot)
        record = replace(result, completed_at=now, artifacts=list(result.artifacts))
        return record, _Part((command, slot), [t.task, t.history, t.result],
                             [task_id, _optional(result.worker_id), _optional(lease_id),
                              result.status.value, _optional(result.error), result_json(record)])

    @staticmethod
    def _complete_common(group: tuple[str, int], now: float) -> tuple[list[str], list[str]]:
        command, slot = group
        q, o = QueueKeys(command), OutboxKeys(slot)
        return [q.leases, q.done, o.due, o.callbacks], [num(now)]

    def _completed(self, task_id: str, command: str, result: ResultRecord, record: ResultRecord,
                   lease_id: str | None, reply: Any) -> tuple[ResultRecord, str | None]:
        """``complete``'s answer from the script's reply."""
        if reply[0] == "OK":
            return record, command
        if reply[0] == "STORED":
            stored = decode_result(reply[1])
            if lifecycle.same_submission(stored, result):
                return stored, None
            raise Conflict(f"task {task_id} already has a result", status=reply[2])
        self._refuse(reply, task_id, lease_id)
        raise AssertionError("unreachable")

    # -- background work ---------------------------------------------------------------
    async def _promote(self, command: str, now: float, due: Sequence[str]) -> int:
        """Promote the given due tasks of one command; re-index its delayed head."""
        q = QueueKeys(command)
        keys, args = [q.delayed, q.ready, q.seq], [num(now), READY_CHANNEL, command]
        for task_id in due:
            t = self._task_keys(task_id, command)
            keys += [t.task, t.history]
            args.append(task_id)
        moved, head, became_ready = await self._run("promote", keys, args)
        await self._lower(DELAYED_INDEX, command, head)
        if moved:
            self.ready.notify(command)
        if became_ready == 1:
            self._emit([command])
        return int(moved)

    async def _rescan(self) -> None:
        """Rebuild both due indexes from every command's queue heads (bounded by #commands)."""
        self._rescanned = time.monotonic()
        names = await self._all_commands()
        if not names:
            return
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            q = QueueKeys(name)
            pipe.zrange(q.delayed, 0, 0, withscores=True)
            pipe.zrange(q.leases, 0, 0, withscores=True)
        replies = await pipe.execute()
        calls = []
        for i, name in enumerate(names):
            for index, head in ((DELAYED_INDEX, replies[2 * i]), (LEASES_INDEX, replies[2 * i + 1])):
                if head:
                    calls.append(("index_lower", [index], [name, repr(head[0][1])]))
        if calls:
            await self._run_many(calls)

    async def _due(self, index: str, now: float, limit: int) -> list[str]:
        """Commands whose index entry is due, each removed from the index first.

        The caller then reads the command's queue and re-adds its head: a writer
        whose update came before the removal is seen by that read, one whose
        update came after it has re-added itself.
        """
        if time.monotonic() - self._rescanned > RESCAN_SECONDS:
            await self._rescan()
        names = [name for name, _ in await self._by_score(index, "-inf", num(now), limit)]
        if names:
            await self.client.zrem(index, *names)
        return names

    @translate_errors
    async def promote_due(self, *, now: float, limit: int) -> list[str]:
        """Oldest due first across commands: merge the due heads, then promote per command."""
        names = await self._due(DELAYED_INDEX, now, limit)
        if not names:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.zrangebyscore(QueueKeys(name).delayed, "-inf", num(now), start=0, num=limit,
                               withscores=True)
        replies = await pipe.execute()
        due = sorted((score, name, task_id) for name, entries in zip(names, replies, strict=True)
                     for task_id, score in entries)[:limit]
        picked: dict[str, list[str]] = {name: [] for name in names}
        for _, name, task_id in due:
            picked[name].append(task_id)
        moved: list[str] = []
        for name, task_ids in picked.items():
            # Every de-indexed command runs the script, if only to re-index its head.
            moved += [name] * await self._promote(name, now, task_ids)
        return moved

    @translate_errors
    async def expired_leases(self, *, now: float, limit: int) -> list[Task]:
        names = await self._due(LEASES_INDEX, now, limit)
        if not names:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.zrange(QueueKeys(name).leases, 0, limit, withscores=True)
        replies = await pipe.execute()
        expired: list[str] = []
        calls = []
        for name, entries in zip(names, replies, strict=True):
            if entries:
                calls.append(("index_lower", [LEASES_INDEX], [name, repr(entries[0][1])]))
            expired += [task_id for task_id, score in entries if score <= now]
        if calls:
            await self._run_many(calls)
        tasks = [t for t in await self._read_tasks(expired)
                 if t is not None and t.status is Status.IN_PROGRESS
                 and t.lease_until is not None and t.lease_until <= now]
        tasks.sort(key=lambda t: (t.lease_until, t.id))
        for task in tasks:
            self._remember(task.id, task.command)
        return tasks[:limit]

    @translate_errors
    async def expire_lease(self, task_id: str, *, lease_id: str, delay_seconds: float,
                           now: float) -> Outcome | None:
        try:
            done = await self._requeue(task_id, mode="expire", worker_id=None, lease_id=lease_id,
                                       delay_seconds=delay_seconds,
                                       reason=lifecycle.LEASE_EXPIRED, now=now)
        except NotFound:
            return None
        return None if done is None else done[1]

    @translate_errors
    async def cleanup(self, *, finished_before: float, limit: int, command: str | None
                      ) -> list[str]:
        names = [command] if command is not None else await self._all_commands()
        deleted: list[str] = []
        for name in names:
            if len(deleted) >= limit:
                break
            q = QueueKeys(name)
            victims = [task_id for task_id, _ in await self._by_score(
                q.done, "-inf", f"({num(finished_before)}", limit - len(deleted))]
            for start in range(0, len(victims), SCRIPT_BATCH):
                keys, args = [q.done, q.all, q.idem, q.dlq], [num(finished_before)]
                for task_id in victims[start:start + SCRIPT_BATCH]:
                    t, o = self._task_keys(task_id, name), self._outbox_keys(task_id, name)
                    keys += [t.task, t.history, t.result, o.due, o.callbacks]
                    args.append(task_id)
                gone = await self._run("cleanup", keys, args)
                await self._slots.forget(self.client, gone)
                deleted += gone
        return deleted

    # -- operators -----------------------------------------------------------------------
    @translate_errors
    async def commands(self) -> list[str]:
        return await self._all_commands()

    def _stats_calls(self, pipe: Any, command: str, now: float) -> None:
        """``STATS_REPLIES`` reads: the depths and the paused flag (six), the head of the
        delayed set, the head of each priority tier of the ready set."""
        q = QueueKeys(command)
        pipe.zcard(q.ready)
        pipe.zcount(q.delayed, "-inf", num(now))
        pipe.zcard(q.delayed)
        pipe.zcard(q.leases)
        pipe.zcard(q.dlq)
        pipe.exists(q.paused)
        pipe.zrange(q.delayed, 0, 0, withscores=True)
        for tier in range(TIERS):
            pipe.zrangebyscore(q.ready, tier * TIER, f"({(tier + 1) * TIER}", start=0, num=1,
                               withscores=True)

    @staticmethod
    def _stats(command: str, r: Sequence[Any], now: float) -> QueueStats:
        """The replies of ``_stats_calls``. A ready score's sequence says when the task
        entered the set (``next_seq``); a due delayed task counts from its visibility."""
        arrivals = [(score - tier * TIER) / SEQ_PER_SECOND
                    for tier, head in enumerate(r[7:]) for _, score in head]
        due = [score for _, score in r[6] if score <= now]
        return QueueStats(command=command, ready=r[0] + r[1], delayed=r[2] - r[1],
                          in_progress=r[3], dlq=r[4], paused=bool(r[5]),
                          oldest_ready_at=min(arrivals + due, default=None))

    @translate_errors
    async def queue_stats(self, command: str, *, now: float) -> QueueStats:
        pipe = self.client.pipeline(transaction=False)
        self._stats_calls(pipe, command, now)
        return self._stats(command, await pipe.execute(), now)

    @translate_errors
    async def all_queue_stats(self, *, now: float) -> list[QueueStats]:
        names = await self._all_commands()
        if not names:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            self._stats_calls(pipe, name, now)
        r = await pipe.execute()
        return [self._stats(name, r[STATS_REPLIES * i:STATS_REPLIES * (i + 1)], now)
                for i, name in enumerate(names)]

    @translate_errors
    async def dlq(self, command: str, *, limit: int, cursor: str | None) -> Page:
        low = "-inf"
        if cursor is not None:
            if cursor_number(cursor) is None:
                raise InvalidInput(f"cursor {cursor[:64]!r} was not produced by this store")
            low = f"({cursor}"
        entries = await self._by_score(QueueKeys(command).dlq, low, "+inf", limit + 1)
        page = entries[:limit]
        tasks = [t for t in await self._read_tasks([task_id for task_id, _ in page])
                 if t is not None]
        more = len(entries) > limit
        return Page(tasks, str(int(page[-1][1])) if more and page else None)

    @translate_errors
    async def redrive(self, command: str, *, ids: Sequence[str] | None, limit: int,
                      now: float) -> int:
        q = QueueKeys(command)
        if ids is None:
            chosen = [task_id for task_id, _ in await self._by_score(q.dlq, "-inf", "+inf", limit)]
        else:
            chosen = list(dict.fromkeys(ids))
            if self.cluster:  # an id of another slot cannot be in this DLQ
                slot = command_slot(command)
                chosen = [i for i in chosen if self._slots.slot(i, command) == slot]
        moved, became_ready = 0, False
        for start in range(0, len(chosen), SCRIPT_BATCH):
            keys, args = [q.dlq, q.ready, q.done, q.seq], [num(now), READY_CHANNEL, command]
            for task_id in chosen[start:start + SCRIPT_BATCH]:
                t = self._task_keys(task_id, command)
                keys += [t.task, t.history]
                args.append(task_id)
            batch_moved, batch_became_ready = await self._run("redrive", keys, args)
            moved += int(batch_moved)
            became_ready |= batch_became_ready == 1
        if moved:
            self.ready.notify(command)
        if became_ready:
            self._emit([command])
        return moved

    @translate_errors
    async def set_paused(self, command: str, paused: bool) -> None:
        await self._register([command])
        q = QueueKeys(command)
        if paused:
            await self.client.set(q.paused, "1")
        else:
            await self.client.delete(q.paused)
            await self.client.publish(READY_CHANNEL, command)
            self.ready.notify(command)

    # -- subscriptions -------------------------------------------------------------------
    @translate_errors
    async def save_subscription(self, subscription: Subscription) -> None:
        await self._run("subscription_save", [SUBSCRIPTIONS, SUBSCRIPTION_EXPIRY],
                        [subscription.id, num(subscription.expires_at),
                         subscription_json(subscription)])

    @translate_errors
    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(SUBSCRIPTIONS, subscription_id)
        pipe.zscore(SUBSCRIPTION_EXPIRY, subscription_id)
        text, expires_at = await pipe.execute()
        return None if text is None else decode_subscription(text, expires_at)

    @translate_errors
    async def renew_subscription(self, subscription_id: str, *, expires_at: float) -> bool:
        return bool(await self._run("subscription_renew", [SUBSCRIPTIONS, SUBSCRIPTION_EXPIRY],
                                    [subscription_id, num(expires_at)]))

    @translate_errors
    async def delete_subscription(self, subscription_id: str) -> bool:
        return bool(await self._run("subscription_delete",
                                    [SUBSCRIPTIONS, SUBSCRIPTION_EXPIRY, NOTIFIED],
                                    [subscription_id]))

    @translate_errors
    async def subscriptions(self, *, now: float) -> list[Subscription]:
        pipe = self.client.pipeline(transaction=False)
        pipe.zrangebyscore(SUBSCRIPTION_EXPIRY, f"({num(now)}", "+inf", withscores=True)
        pipe.hgetall(SUBSCRIPTIONS)
        active, texts = await pipe.execute()
        return sorted((decode_subscription(texts[sub_id], expires_at)
                       for sub_id, expires_at in active if sub_id in texts),
                      key=lambda s: s.id)

    @translate_errors
    async def sweep_subscriptions(self, *, now: float, limit: int) -> int:
        if limit <= 0:
            return 0
        return int(await self._run("subscriptions_sweep",
                                   [SUBSCRIPTIONS, SUBSCRIPTION_EXPIRY, NOTIFIED],
                                   [num(now), str(limit)]))

    @translate_errors
    async def mark_notified(self, subscription_id: str, *, now: float,
                            min_interval_seconds: float) -> bool:
        return bool(await self._run("mark_notified", [NOTIFIED, SUBSCRIPTIONS],
                                    [subscription_id, num(now), num(min_interval_seconds)]))

    @translate_errors
    async def next_turn(self, key: str) -> int:
        return int(await self.client.hincrby(TURNS, key, 1))

    # -- result callback outbox ----------------------------------------------------------
    async def _outbox_slots(self) -> list[int]:
        """Every slot whose outbox may hold callbacks (a set of at most 16,384 members)."""
        members = cast(set[str], await self.client.smembers(OUTBOX_SLOTS))
        return sorted(int(m) for m in members)

    @translate_errors
    async def due_callbacks(self, *, now: float, limit: int, hold_seconds: float
                            ) -> list[Callback]:
        """Peek the due heads of every outbox, merge them, take the best on their shards.

        A slot whose script took fewer than it was asked for raced another
        dispatcher; the next round peeks again for the remainder.
        """
        slots = await self._outbox_slots()
        until, hold_until = num(now), num(now + hold_seconds)
        taken: list[Callback] = []
        for _ in range(RACE_ROUNDS):
            want = limit - len(taken)
            if want <= 0 or not slots:
                break
            pipe = self.client.pipeline(transaction=False)
            for slot in slots:
                pipe.zrangebyscore(OutboxKeys(slot).due, "-inf", until, start=0, num=want,
                                   withscores=True)
            heads = await pipe.execute()
            best = sorted((score, task_id, slot) for slot, entries in zip(slots, heads, strict=True)
                          for task_id, score in entries)[:want]
            take = Counter(slot for _, _, slot in best)
            calls = [("outbox_take", [OutboxKeys(slot).due, OutboxKeys(slot).callbacks],
                      [until, str(n), hold_until]) for slot, n in take.items()]
            replies = await self._run_many(calls) if calls else []
            raced = False
            for n, reply in zip(take.values(), replies, strict=True):
                got = [decode_callback(reply[i], reply[i + 2], float(reply[i + 1]))
                       for i in range(0, len(reply), 3)]
                raced |= len(got) < n
                taken += got
            if not raced:
                break
        taken.sort(key=lambda c: (c.due_at, c.task_id))
        return taken

    @translate_errors
    async def callback_attempted(self, task_id: str, *, attempts: int,
                                 retry_at: float | None) -> bool:
        await self._slots.resolve(self.client, [task_id])
        o = self._outbox_keys(task_id)
        return bool(await self._run("outbox_attempted", [o.due, o.callbacks],
                                    [task_id, str(attempts),
                                     "" if retry_at is None else num(retry_at)]))

    @translate_errors
    async def outbox_size(self) -> int:
        slots = await self._outbox_slots()
        if not slots:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for slot in slots:
            pipe.zcard(OutboxKeys(slot).due)
        return sum(await pipe.execute())

    @translate_errors
    async def callbacks(self) -> list[Callback]:
        slots = await self._outbox_slots()
        if not slots:
            return []
        pipe = self.client.pipeline(transaction=False)
        for slot in slots:
            o = OutboxKeys(slot)
            pipe.zrange(o.due, 0, -1, withscores=True)
            pipe.hgetall(o.callbacks)
        replies = await pipe.execute()
        found = [decode_callback(task_id, data[task_id], due_at)
                 for entries, data in zip(replies[::2], replies[1::2], strict=True)
                 for task_id, due_at in entries if task_id in data]
        return sorted(found, key=lambda c: c.task_id)

    @translate_errors
    async def restore_callback(self, callback: Callback) -> None:
        await self._slots.resolve(self.client, [callback.task_id])
        slot = self._slots.slot(callback.task_id)
        await self._register((), [slot])
        o = OutboxKeys(slot)
        await self._run("outbox_put", [o.due, o.callbacks],
                        [callback.task_id, num(callback.due_at), callback_json(callback)])

    # -- migration -------------------------------------------------------------------------
    @staticmethod
    def _placement(task: Task) -> tuple[str, str]:
        """The queue a restored task goes to and its score there (``MemoryStorage._place``)."""
        if task.status is Status.PENDING:
            if task.visible_at is not None and task.visible_at > task.updated_at:
                return "delayed", num(task.visible_at)
            return "ready", ""
        if task.status is Status.IN_PROGRESS:
            lease_until = task.lease_until if task.lease_until is not None else task.updated_at
            return "leases", num(lease_until)
        finished = task.finished_at if task.finished_at is not None else task.updated_at
        return ("dlq" if task.dead_lettered else "done"), num(finished)

    async def restore(self, task: Task, result: ResultRecord | None) -> bool:
        """One script; the wall clock (not a task time) orders restored tasks, so listings,
        ready and DLQ queues follow the order of restoring."""
        return (await self.restore_many([(task, result)]))[0]

    @translate_errors
    async def restore_many(self, items: Sequence[tuple[Task, ResultRecord | None]]
                           ) -> list[bool]:
        """``restore`` scripts in pipelined batches, in order. On a cluster an id without a
        slot hint is placed in its command's slot and recorded in the foreign-id index first."""
        for task, _ in items:
            self._check_slot(task, restoring=True)
        taken = await self._slots.record(self.client, [(t.id, t.command) for t, _ in items])
        fresh = [(task, result) for task, result in items if task.id not in taken]
        await self._register_tasks(task for task, _ in fresh)
        calls = [self._restore_call(task, result, num(self._restore_clock()))
                 for task, result in fresh]
        restored: list[bool] = []
        for start in range(0, len(calls), SCRIPT_BATCH):
            replies = await self._run_many(calls[start:start + SCRIPT_BATCH])
            for (task, _), reply in zip(fresh[start:start + SCRIPT_BATCH], replies, strict=True):
                restored.append(await self._restored(task, reply))
        answers = iter(restored)
        return [task.id not in taken and next(answers) for task, _ in items]

    def _restore_clock(self) -> float:
        """The wall clock, but strictly later (by a sequence step, 10 µs) than the last
        restore's, so that tasks restored in one batch keep their order across commands."""
        self._last_restore = max(time.time(), self._last_restore + RESTORE_STEP)
        return self._last_restore

    def _restore_call(self, task: Task, result: ResultRecord | None, now: str
                      ) -> tuple[str, list[str], list[str]]:
        queue, score = self._placement(task)
        q, t = QueueKeys(task.command), self._task_keys(task.id, task.command)
        return ("restore", [t.task, t.history, t.result, q.ready, q.delayed, q.leases, q.dlq,
                            q.done, q.all, q.idem, q.seq],
                [now, task.id, queue, score, str(task.priority), _optional(task.idempotency_key),
                 _optional(None if result is None else result_json(result)), READY_CHANNEL,
                 task.command, dumps(task_fields(task)),
                 *(history_entry(h) for h in task.history)])

    async def _restored(self, task: Task, reply: Any) -> bool:
        if reply[0] == "DUPLICATE":
            return False
        queue, _ = self._placement(task)
        if queue in ("delayed", "leases"):
            await self._lower(DELAYED_INDEX if queue == "delayed" else LEASES_INDEX,
                              task.command, reply[1])
        elif queue == "ready":
            self.ready.notify(task.command)
            if reply[2] == 1:
                self._emit([task.command])
        return True
