"""The 403 cells: verified tokens (real dev-key JWTs) that the scheduler refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codeq.core import models
from codeq.core.auth import Principal
from codeq.core.config import Settings
from codeq.core.errors import Forbidden
from codeq.core.scheduler import Scheduler
from codeq.devkeys import mint_token
from codeq.plugins import backoff_policies, open_storage
from codeq.server.auth import Authenticator, build_authenticator


@pytest.fixture
async def scheduler_for(tmp_path: Path) -> AsyncIterator[
        tuple[Authenticator, Scheduler, Settings]]:
    settings = Settings(data_dir=tmp_path, storage="memory://")
    store = open_storage(settings.storage_url, settings)
    await store.open()
    auth = build_authenticator(settings)
    yield auth, Scheduler(store, settings, backoff_policies()), settings
    await auth.aclose()
    await store.close()


async def principal(auth: Authenticator, token: str, x_role: str | None = None) -> Principal:
    return await auth.authenticate(f"Bearer {token}", x_role)


async def test_a_worker_token_without_the_scope_is_forbidden(
        scheduler_for: tuple[Authenticator, Scheduler, Settings], tmp_path: Path) -> None:
    auth, scheduler, _ = scheduler_for
    worker = await principal(auth, mint_token(tmp_path, "worker", scopes=["codeq:heartbeat"]))
    with pytest.raises(Forbidden, match="token lacks scope codeq:claim"):
        await scheduler.claim(worker, models.Claim())


async def test_claiming_an_event_type_the_token_does_not_allow_is_forbidden(
        scheduler_for: tuple[Authenticator, Scheduler, Settings], tmp_path: Path) -> None:
    auth, scheduler, _ = scheduler_for
    producer = await principal(auth, mint_token(tmp_path, "producer"))
    await scheduler.create(producer, models.CreateTask(command="ENCODE", payload={}))
    worker = await principal(auth, mint_token(tmp_path, "worker", events=("RESIZE",)))
    with pytest.raises(Forbidden, match="does not allow event type.*ENCODE"):
        await scheduler.claim(worker, models.Claim(commands=["ENCODE"]))
    assert await scheduler.claim(worker, models.Claim()) == []  # RESIZE only: nothing there
    allowed = await principal(auth, mint_token(tmp_path, "worker", events=("ENCODE",)))
    [task] = await scheduler.claim(allowed, models.Claim(commands=["ENCODE"]))
    assert task.worker_id == "dev-worker"


async def test_roles_are_kept_apart(
        scheduler_for: tuple[Authenticator, Scheduler, Settings], tmp_path: Path) -> None:
    auth, scheduler, _ = scheduler_for
    producer = await principal(auth, mint_token(tmp_path, "producer"))
    worker = await principal(auth, mint_token(tmp_path, "worker"))
    with pytest.raises(Forbidden, match="needs a producer token"):
        await scheduler.create(worker, models.CreateTask(command="A", payload=1))
    with pytest.raises(Forbidden, match="needs a worker token"):
        await scheduler.claim(producer, models.Claim())
    with pytest.raises(Forbidden, match="needs an admin token"):
        await scheduler.queues(producer)
    admin = await principal(auth, mint_token(tmp_path, "admin"))
    assert await scheduler.queues(admin) == []


async def test_x_role_admin_opens_admin_routes_in_dev(
        scheduler_for: tuple[Authenticator, Scheduler, Settings], tmp_path: Path) -> None:
    auth, scheduler, _ = scheduler_for
    promoted = await principal(auth, mint_token(tmp_path, "producer"), x_role="ADMIN")
    assert await scheduler.queues(promoted) == []


async def test_allow_producer_as_worker_lets_a_producer_claim_in_dev(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, allow_producer_as_worker=True)
    store = open_storage("memory://", settings)
    await store.open()
    scheduler = Scheduler(store, settings, backoff_policies())
    auth = build_authenticator(settings)
    producer = await principal(auth, mint_token(tmp_path, "producer", sub="laptop"))
    await scheduler.create(producer, models.CreateTask(command="ANY", payload=1))
    [task] = await scheduler.claim(producer, models.Claim())
    assert task.worker_id == "laptop"
    prod = Scheduler(store, settings.model_copy(update={"env": "prod"}), backoff_policies())
    with pytest.raises(Forbidden, match="needs a worker token"):
        await prod.claim(producer, models.Claim())
    await auth.aclose()
    await store.close()

