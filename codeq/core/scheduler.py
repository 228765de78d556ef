"""The scheduler service: every API operation, with its rules, over one store.

The HTTP layer, the CLI's direct-store commands and the tests all go through
this class. It checks who may do what (``Principal``), fills in defaults from
the settings, computes backoff, and lets the store make each transition
atomic. Time comes from an injectable clock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from codeq.core import models
from codeq.core.artifacts import ArtifactStore, artifact_url, check_artifact_name
from codeq.core.auth import Principal, Role, Scope, producer_as_worker
from codeq.core.backoff import BackoffPolicies
from codeq.core.config import Settings
from codeq.core.domain import (
    COMMAND_PATTERN,
    Artifact,
    BackoffSpec,
    Outcome,
    Page,
    QueueStats,
    ResultRecord,
    Status,
    Task,
)
from codeq.core.errors import CodeqError, Conflict, Forbidden, InvalidInput, NotFound
from codeq.core.events import NO_RECORDER, OUTCOME_EVENTS, Event, Recorder
from codeq.core.jsontext import canonical
from codeq.core.lifecycle import MAX_ATTEMPTS_ERROR, check_lease
from codeq.core.outbound import OutboundPolicy
from codeq.core.storage import Completion, Storage

log = logging.getLogger("codeq.scheduler")

Clock = Callable[[], float]
#: A waiting claim looks at the store again at least this often, in case a
#: wake-up was missed (another process, a lost pub/sub message).
FALLBACK_RECHECK_SECONDS = 1.0
MAX_LIST_LIMIT = 1000


@dataclass(slots=True)
class NackOutcome:
    outcome: Outcome
    delay_seconds: float


def _parse(model: type[models.Model], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(models.describe(exc.errors())) from None


class Scheduler:
    def __init__(self, store: Storage, settings: Settings, backoff: BackoffPolicies,
                 clock: Clock = time.time, recorder: Recorder = NO_RECORDER, *,
                 artifacts: ArtifactStore | None = None) -> None:
        self.store = store
        self.settings = settings
        self.backoff = backoff
        self.clock = clock
        self.recorder = recorder
        #: Where uploaded artifacts go; None: this scheduler accepts artifact URLs only.
        self.artifacts = artifacts
        self.outbound = OutboundPolicy(
            allow_private=settings.dev or settings.webhook_allow_private_networks)
        self.backoff.check(settings.backoff_policy)
        for queue in settings.queues.values():
            if queue.backoff_policy:
                self.backoff.check(queue.backoff_policy)

    # -- who may call -------------------------------------------------------
    def _producer(self, principal: Principal) -> Principal:
        if principal.role is not Role.PRODUCER:
            raise Forbidden("this route needs a producer token")
        return principal

    def _admin(self, principal: Principal) -> Principal:
        if not principal.admin:
            raise Forbidden("this route needs an admin token (role ADMIN or scope codeq:admin)")
        return principal

    def as_worker(self, principal: Principal, scope: Scope) -> Principal:
        """The caller as a worker holding ``scope`` (403 otherwise)."""
        if principal.role is Role.PRODUCER:
            if not (self.settings.dev and self.settings.allow_producer_as_worker):
                raise Forbidden("this route needs a worker token")
            principal = producer_as_worker(principal)
        principal.require_scope(scope)
        return principal

    # -- settings per command ---------------------------------------------------
    def backoff_for(self, command: str, override: models.BackoffOverride | None = None
                    ) -> BackoffSpec:
        queue = self.settings.queue(command)
        s = self.settings
        policy = (override.policy if override and override.policy is not None
                  else queue.backoff_policy or s.backoff_policy)  # "" is unknown, not the default
        base = override.base_seconds if override and override.base_seconds is not None else None
        top = override.max_seconds if override and override.max_seconds is not None else None
        return BackoffSpec(
            policy=self.backoff.check(policy),
            base_seconds=base if base is not None else (
                queue.backoff_base_seconds if queue.backoff_base_seconds is not None
                else s.backoff_base_seconds),
            max_seconds=top if top is not None else (
                queue.backoff_max_seconds if queue.backoff_max_seconds is not None
                else s.backoff_max_seconds),
        )

    def retry_delay(self, task: Task) -> float:
        spec = task.backoff or self.backoff_for(task.command)
        return self.backoff.delay(spec, task.attempts)

    # -- producers ------------------------------------------------------------
    def build_task(self, req: models.CreateTask, now: float) -> Task:
        run_at = req.run_at.timestamp() if req.run_at is not None else None
        if run_at is not None:
            visible = run_at
        elif req.delay_seconds:
            visible = now + req.delay_seconds
        else:
            visible = None
        task = Task(
            id=self.store.new_task_id(req.command),
            command=req.command,
            payload=req.payload,
            priority=req.priority,
            max_attempts=req.max_attempts or self.settings.max_attempts_for(req.command),
            created_at=now,
            updated_at=now,
            webhook=req.webhook,
            run_at=run_at,
            visible_at=visible if visible is not None and visible > now else None,
            idempotency_key=req.idempotency_key,
            backoff=self.backoff_for(req.command, req.backoff) if req.backoff else None,
        )
        task.record(now, "created")
        return task

    @staticmethod
    def _check_replay(task: Task, stored: Task, created: bool) -> Task:
        if not created and canonical(stored.payload) != canonical(task.payload):
            raise Conflict(f"idempotencyKey {task.idempotency_key!r} was already used for "
                           f"command {task.command} with a different payload",
                           taskId=stored.id)
        return stored

    async def _checked(self, req: models.CreateTask) -> models.CreateTask:
        if req.webhook is not None:
            await self.outbound.check(req.webhook, field="webhook")
        return req

    async def create(self, principal: Principal, req: models.CreateTask) -> tuple[Task, bool]:
        self._producer(principal)
        now = self.clock()
        task = self.build_task(await self._checked(req), now)
        stored, created = await self.store.create(task, now=now)
        if created:
            self.recorder.count(Event.CREATED, task.command)
        return self._check_replay(task, stored, created), created

    async def create_batch(self, principal: Principal, items: Sequence[Any]
                           ) -> list[Task | CodeqError]:
        """Each item validated and created on its own; errors stay in their place."""
        self._producer(principal)
        now = self.clock()
        out: list[Task | CodeqError] = []
        for item in items:
            try:
                out.append(self.build_task(await self._checked(_parse(models.CreateTask, item)),
                                           now))
            except CodeqError as exc:
                out.append(exc)
        built = [(index, t) for index, t in enumerate(out) if isinstance(t, Task)]
        if built:
            stored = await self.store.create_many([t for _, t in built], now=now)
            self._count(Event.CREATED, [saved.command for saved, created in stored if created])
            for (index, task), (saved, created) in zip(built, stored, strict=True):
                try:
                    out[index] = self._check_replay(task, saved, created)
                except CodeqError as exc:
                    out[index] = exc
        return out

    async def get(self, principal: Principal, task_id: str) -> Task:
        task = await self.store.get(models.check_task_id(task_id))
        if task is None:
            raise NotFound(f"no task with id {task_id}")
        return task

    async def result_of(self, task: Task) -> ResultRecord | None:
        """The task's result record; a dead-lettered task's is its MAX_ATTEMPTS failure."""
        record = await self.store.get_result(task.id)
        if record is None and task.dead_lettered:
            record = ResultRecord(task_id=task.id, status=Status.FAILED, error=MAX_ATTEMPTS_ERROR,
                                  completed_at=task.finished_at or task.updated_at)
        return record

    async def result(self, principal: Principal, task_id: str) -> tuple[Task, ResultRecord]:
        task = await self.get(principal, task_id)
        record = await self.result_of(task)
        if record is None:
            state = "was cancelled" if task.status is Status.CANCELLED else f"is {task.status.value}"
            raise NotFound(f"task {task_id} has no result yet: it {state}",
                           status=task.status.value)
        return task, record

    async def list_tasks(self, principal: Principal, *, command: str | None = None,
                         status: str | None = None, limit: int = 50,
                         cursor: str | None = None) -> Page:
        if not principal.admin:
            self._producer(principal)
        if command is not None:
            self._command(command)
        try:
            state = Status(status) if status is not None else None  # "": no status
        except ValueError:
            raise InvalidInput(f"status must be one of {', '.join(s.value for s in Status)}"
                               ) from None
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        return await self.store.list_tasks(command=command, status=state, limit=limit,
                                           cursor=cursor)

    async def cancel(self, principal: Principal, task_id: str) -> Task:
        self._producer(principal)
        task = await self.store.cancel(models.check_task_id(task_id), now=self.clock())
        if task.status is Status.CANCELLED:
            self.recorder.count(Event.CANCELLED, task.command)
        return task

    # -- workers --------------------------------------------------------------
    def lease_seconds(self, requested: float | None, commands: Sequence[str] | None) -> float:
        if requested is None:
            requested = (self.settings.lease_seconds_for(commands[0])
                         if commands and len(commands) == 1 else self.settings.default_lease_seconds)
        return min(requested, self.settings.max_lease_seconds)

    async def claim(self, principal: Principal, req: models.Claim, count: int = 1) -> list[Task]:
        """Lease up to ``count`` tasks, waiting up to ``req.wait_seconds`` for one to be ready."""
        worker = self.as_worker(principal, Scope.CLAIM)
        commands = worker.claimable(req.commands)
        if commands == []:
            return []
        lease = self.lease_seconds(req.lease_seconds, commands)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + req.wait_seconds
        while True:
            with self.store.ready.listen(commands) as waiter:
                tasks = await self.store.claim(commands, worker_id=worker.sub, lease_seconds=lease,
                                               count=count, now=self.clock())
                if tasks:
                    self._count(Event.CLAIMED, [task.command for task in tasks])
                    if len(tasks) == count:  # more may be ready: wake the next claim
                        for command in {task.command for task in tasks}:
                            self.store.ready.notify(command)
                    return tasks
                # Due delayed tasks are claimable already; expired leases need a pass.
                if await self.reap_once():
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                await waiter.wait(min(remaining, FALLBACK_RECHECK_SECONDS))

    async def heartbeat(self, principal: Principal, task_id: str, req: models.Heartbeat) -> Task:
        worker = self.as_worker(principal, Scope.HEARTBEAT)
        extend = min(req.extend_seconds or self.settings.default_lease_seconds,
                     self.settings.max_lease_seconds)
        return await self.store.heartbeat(models.check_task_id(task_id), worker_id=worker.sub,
                                          lease_id=req.lease_id, lease_seconds=extend,
                                          now=self.clock())

    async def abandon(self, principal: Principal, task_id: str, req: models.Abandon
                      ) -> tuple[Task, Outcome]:
        worker = self.as_worker(principal, Scope.ABANDON)
        task, outcome = await self.store.abandon(models.check_task_id(task_id),
                                                 worker_id=worker.sub, lease_id=req.lease_id,
                                                 now=self.clock())
        if outcome in OUTCOME_EVENTS:
            self.recorder.count(OUTCOME_EVENTS[outcome], task.command)
        return task, outcome

    async def nack(self, principal: Principal, task_id: str, req: models.Nack) -> NackOutcome:
        worker = self.as_worker(principal, Scope.NACK)
        task = await self.get(worker, task_id)
        if req.delay_seconds is None:
            delay = self.retry_delay(task)
        else:
            delay = min(req.delay_seconds, (task.backoff or self.backoff_for(task.command)
                                            ).max_seconds)
        # Fence on the lease we computed the delay for, so attempts cannot have moved.
        lease_id = req.lease_id or task.lease_id
        _, outcome = await self.store.nack(task_id, worker_id=worker.sub, lease_id=lease_id,
                                           delay_seconds=delay, reason=req.reason,
                                           now=self.clock())
        self.recorder.count(OUTCOME_EVENTS.get(outcome, Event.NACKED), task.command)
        return NackOutcome(outcome, delay if outcome is Outcome.REQUEUED else 0)

    async def submit_result(self, principal: Principal, task_id: str, req: models.SubmitResult
                            ) -> ResultRecord:
        worker = self.as_worker(principal, Scope.RESULT)
        record = await self._result_record(worker.sub, task_id, req)
        stored, command = await self.store.complete(task_id, result=record,
                                                    lease_id=req.lease_id, now=self.clock())
        if command is not None:  # None: a repeat of a stored submission
            self.recorder.count(Event.COMPLETED if stored.status is Status.COMPLETED
                                else Event.FAILED, command)
        return stored

    async def _result_record(self, worker_id: str, task_id: str, req: models.SubmitResult
                             ) -> ResultRecord:
        """The record a submission asks to store, after uploading its artifacts."""
        models.check_task_id(task_id)
        status = Status(req.status)
        if status is Status.COMPLETED and "result" not in req.model_fields_set:
            raise InvalidInput("status COMPLETED needs a result")
        if status is Status.FAILED and not (req.error and req.error.strip()):
            raise InvalidInput("status FAILED needs a non-empty error")
        artifacts, uploads = self._artifacts(task_id, req.artifacts)
        if uploads:
            await self._upload(task_id, worker_id, req.lease_id, uploads)
        return ResultRecord(task_id=task_id, status=status, result=req.result, error=req.error,
                            artifacts=artifacts, worker_id=worker_id)

    def _count(self, event: Event, commands: Iterable[str]) -> None:
        """Count a batch: one call per command, not per task."""
        for command, n in Counter(commands).items():
            self.recorder.count(event, command, n)

    def _artifacts(self, task_id: str, given: Sequence[models.ArtifactIn]
                   ) -> tuple[list[Artifact], dict[str, bytes]]:
        """The artifacts of a result as recorded, and the bytes to upload by name."""
        artifacts: list[Artifact] = []
        uploads: dict[str, bytes] = {}
        for a in given:
            if any(known.name == a.name for known in artifacts):
                raise InvalidInput(f"artifact {a.name!r} is given twice")
            if (a.url is None) == (a.content_base64 is None):
                raise InvalidInput(f"artifact {a.name!r} needs either a url or contentBase64")
            if a.url is not None:
                artifacts.append(Artifact(name=a.name, url=a.url, content_type=a.content_type))
                continue
            if self.artifacts is None:
                raise InvalidInput(f"artifact {a.name!r}: uploads (contentBase64) are not "
                                   "accepted here; give a url")
            try:
                data = base64.b64decode(a.content_base64 or "", validate=True)
            except binascii.Error:
                raise InvalidInput(f"artifact {a.name!r}: contentBase64 is not valid "
                                   "base64") from None
            if len(data) > self.settings.max_artifact_bytes:
                raise InvalidInput(f"artifact {a.name!r} is {len(data)} bytes; the limit is "
                                   f"{self.settings.max_artifact_bytes} (maxArtifactBytes)")
            uploads[a.name] = data
            artifacts.append(Artifact(name=a.name, url=artifact_url(task_id, a.name),
                                      content_type=a.content_type or "application/octet-stream"))
        return artifacts, uploads

    async def _upload(self, task_id: str, worker_id: str, lease_id: str | None,
                      uploads: dict[str, bytes]) -> None:
        """Store uploaded bytes before the result that names them, but only for the worker
        holding the lease: nobody else may overwrite a task's artifacts. A repeat of a
        submission that is already stored uploads nothing."""
        assert self.artifacts is not None
        task = await self.store.get(task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id}")
        if await self.store.get_result(task_id) is not None:
            return
        check_lease(task, worker_id=worker_id, lease_id=lease_id)
        for name, data in uploads.items():
            await self.artifacts.put(task_id, name, data)

    async def artifact(self, principal: Principal, task_id: str, name: str
                       ) -> tuple[bytes, str]:
        """The bytes and content type of an uploaded artifact of a finished task."""
        try:
            check_artifact_name(name)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        _, record = await self.result(principal, task_id)
        found = next((a for a in record.artifacts if a.name == name), None)
        if found is None:
            raise NotFound(f"task {task_id} has no artifact named {name[:64]!r}")
        data = None
        if found.url == artifact_url(task_id, name) and self.artifacts is not None:
            data = await self.artifacts.get(task_id, name)
        if data is None:
            raise NotFound(f"artifact {name[:64]!r} of task {task_id} is not stored here",
                           url=found.url)
        return data, found.content_type or "application/octet-stream"

    async def submit_results(self, principal: Principal, items: Sequence[Any]
                             ) -> list[tuple[str | None, ResultRecord | CodeqError]]:
        """Each item succeeds or fails on its own; the valid ones are stored in one batch."""
        worker = self.as_worker(principal, Scope.RESULT)
        ids: list[str | None] = []
        answers: list[ResultRecord | CodeqError | None] = []
        batch: list[Completion] = []
        places: list[int] = []
        for item in items:
            task_id = item.get("taskId") if isinstance(item, dict) else None
            ids.append(task_id if isinstance(task_id, str) else None)
            try:
                parsed = _parse(models.BatchResultItem, item)  # a SubmitResult with its id
                record = await self._result_record(worker.sub, parsed.task_id, parsed)
            except CodeqError as exc:
                answers.append(exc)
                continue
            places.append(len(answers))
            answers.append(None)
            batch.append((parsed.task_id, record, parsed.lease_id))
        done = await self.store.complete_many(batch, now=self.clock()) if batch else []
        stored: list[tuple[ResultRecord, str]] = []
        for place, answer in zip(places, done, strict=True):
            if isinstance(answer, CodeqError):
                answers[place] = answer
            else:
                record, command = answer
                if command is not None:
                    stored.append((record, command))
                answers[place] = record
        self._count(Event.COMPLETED, [c for r, c in stored if r.status is Status.COMPLETED])
        self._count(Event.FAILED, [c for r, c in stored if r.status is not Status.COMPLETED])
        # Every place is filled now: by its refusal above, or by the store's answer.
        return list(zip(ids, cast(list[ResultRecord | CodeqError], answers), strict=True))

    # -- background work ----------------------------------------------------------
    async def promote_once(self) -> int:
        """Move due delayed tasks to ready; returns how many."""
        commands = await self.store.promote_due(now=self.clock(),
                                                limit=self.settings.requeue_inspect_limit)
        return len(commands)

    async def reap_once(self) -> int:
        """Retry (or dead-letter) tasks whose lease ran out; returns how many this call moved."""
        expired = await self.store.expired_leases(now=self.clock(),
                                                  limit=self.settings.requeue_inspect_limit)
        moved = 0
        for task in expired:
            assert task.lease_id is not None
            outcome = await self.store.expire_lease(task.id, lease_id=task.lease_id,
                                                    delay_seconds=self.retry_delay(task),
                                                    now=self.clock())
            if outcome is not None:
                moved += 1
                self.recorder.count(Event.LEASE_EXPIRED, task.command)
                if outcome in OUTCOME_EVENTS:
                    self.recorder.count(OUTCOME_EVENTS[outcome], task.command)
                log.info("lease expired", extra={"taskId": task.id, "command": task.command,
                                                 "outcome": outcome.value})
        return moved

    # -- operators ----------------------------------------------------------------
    async def queues(self, principal: Principal) -> list[QueueStats]:
        self._admin(principal)
        return await self.store.all_queue_stats(now=self.clock())

    async def queue(self, principal: Principal, command: str) -> QueueStats:
        self._admin(principal)
        return await self.store.queue_stats(self._command(command), now=self.clock())

    @staticmethod
    def _command(command: str) -> str:
        if not COMMAND_PATTERN.match(command):
            raise InvalidInput(f"{command[:64]!r} is not a valid command name")
        return command

    async def dlq(self, principal: Principal, command: str, *, limit: int = 50,
                  cursor: str | None = None) -> Page:
        self._admin(principal)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        return await self.store.dlq(self._command(command), limit=limit, cursor=cursor)

    async def redrive(self, principal: Principal, command: str, req: models.Redrive) -> int:
        self._admin(principal)
        ids = [models.check_task_id(i) for i in req.ids] if req.ids is not None else None
        moved = await self.store.redrive(self._command(command), ids=ids, limit=req.limit,
                                         now=self.clock())
        self.recorder.count(Event.REDRIVEN, command, moved)
        return moved

    async def set_paused(self, principal: Principal, command: str, paused: bool) -> QueueStats:
        self._admin(principal)
        await self.store.set_paused(self._command(command), paused)
        if not paused:
            self.store.ready.notify(command)
        return await self.store.queue_stats(command, now=self.clock())

    async def cleanup(self, principal: Principal, req: models.Cleanup) -> tuple[int, float]:
        self._admin(principal)
        before = req.before.timestamp() if req.before else self.clock()
        deleted = await self.store.cleanup(
            finished_before=before - self.settings.retention_seconds, limit=req.limit,
            command=req.command)
        if self.artifacts is not None:
            await self.artifacts.delete(deleted)
        return len(deleted), before
