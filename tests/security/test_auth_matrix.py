"""Who may call what: every route of the app, called by every kind of caller, exact statuses.

The matrix below has one row per route of the app (method and path template)
and one column per caller. ``test_every_route_has_a_row`` enumerates the routes
of the app itself, so a new route without a row fails the build until someone
decides who may call it. Each cell runs against fresh state (its own command,
task and subscription) on a real dev-mode ``codeq serve``, so the status comes
from the authorization rule and not from what an earlier cell left behind.

Columns (worker tokens of the "lacking" kinds carry the owner's ``sub``, so that
only the one missing right can explain a 403):

- ``none``: no ``Authorization`` header;
- ``producer``, ``admin`` (a producer token with ``role: ADMIN``);
- ``x_role``: a producer token plus ``X-Role: ADMIN`` (dev mode makes it an admin);
- ``no_scope``: the owner, lacking the route's scope (no scope at all where the route
  names none);
- ``other_events``: the owner, every scope, ``eventTypes`` not covering the command;
- ``stranger``: another worker, every scope, every event type;
- ``owner``: the worker that holds the task's lease (or the subscription).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from codeq.core.auth import WORKER_SCOPES, Scope
from codeq.core.config import Settings
from codeq.server.app import create_app
from codeq.testing.server import ServerProcess
from tests.security.conftest import ProdServer

OWNER = "matrix-owner"
STRANGER = "matrix-stranger"
COLUMNS = ("none", "producer", "admin", "x_role", "no_scope", "other_events", "stranger", "owner")
WORKERS = ("no_scope", "other_events", "stranger", "owner")
ARTIFACT = "report.txt"
API = "/v1/codeq"
#: A statement about a batch answer: (HTTP status, status of its first item).
Expected = int | tuple[int, int]


# -- the rules --------------------------------------------------------------------------
def _rule(none: int, producer: int, admin: int, x_role: int, **workers: int) -> dict[str, int]:
    return {"none": none, "producer": producer, "admin": admin, "x_role": x_role, **workers}


def public(ok: int = 200) -> dict[str, Expected]:
    return dict.fromkeys(COLUMNS, ok)


def any_token(ok: int = 200) -> dict[str, Expected]:
    return {**dict.fromkeys(COLUMNS, ok), "none": 401}


def producer(ok: int) -> dict[str, Expected]:
    return {**_rule(401, ok, ok, ok), **dict.fromkeys(WORKERS, 403)}


def admin(ok: int = 200) -> dict[str, Expected]:
    return {**_rule(401, 403, ok, ok), **dict.fromkeys(WORKERS, 403)}


def worker(ok: Expected, *, other_events: Expected, stranger: Expected) -> dict[str, Expected]:
    """A worker route: producers and admins are refused, so is a token lacking the scope."""
    return {**_rule(401, 403, 403, 403), "no_scope": 403, "other_events": other_events,
            "stranger": stranger, "owner": ok}


def lease_holder(ok: int = 200) -> dict[str, Expected]:
    """Heartbeat, abandon, nack, result: the owner of the lease only (SPEC 4, Ownership).

    Ownership is the rule here, not event types: the lease holder finishes what it
    claimed even when its current token names other event types."""
    return worker(ok, other_events=ok, stranger=403)


# -- the state a cell starts from -------------------------------------------------------
@dataclass
class Cell:
    """Fresh state for one call: a command of its own and whatever the row needs."""

    api: httpx.Client
    server: ServerProcess
    command: str = field(default_factory=lambda: f"MX_{uuid.uuid4().hex[:12]}")
    task_id: str = ""
    subscription_id: str = ""
    artifact: str = ARTIFACT

    def owner_headers(self) -> dict[str, str]:
        return self.server.headers("worker", sub=OWNER)

    def create(self) -> None:
        created = self.api.post(f"{API}/tasks", json={"command": self.command, "payload": {"n": 1}},
                                headers=self.server.headers("producer"))
        assert created.status_code == 202, created.text
        self.task_id = created.json()["id"]

    def lease(self) -> None:
        self.create()
        claimed = self.api.post(f"{API}/tasks/claim", json={"commands": [self.command]},
                                headers=self.owner_headers())
        assert claimed.status_code == 200 and claimed.json()["id"] == self.task_id, claimed.text

    def complete(self, **extra: Any) -> None:
        self.lease()
        done = self.api.post(f"{API}/tasks/{self.task_id}/result", headers=self.owner_headers(),
                             json={"status": "COMPLETED", "result": {"ok": True}, **extra})
        assert done.status_code == 200, done.text

    def complete_with_artifact(self) -> None:
        content = base64.b64encode(b"the report").decode()
        self.complete(artifacts=[{"name": ARTIFACT, "contentBase64": content,
                                  "contentType": "text/plain"}])

    def subscribe(self) -> None:
        made = self.api.post(f"{API}/workers/subscriptions", headers=self.owner_headers(),
                             json={"callbackUrl": "http://127.0.0.1:9/hook",
                                   "eventTypes": [self.command]})
        assert made.status_code == 200, made.text
        self.subscription_id = made.json()["subscriptionId"]


Setup = Callable[[Cell], None]


def nothing(cell: Cell) -> None:
    pass


@dataclass(frozen=True)
class Row:
    """How to call one route and what each column gets."""

    expect: dict[str, Expected]
    setup: Setup = nothing
    #: ``Cell`` attributes that fill the path's parameters, in order.
    params: tuple[str, ...] = ()
    body: Callable[[Cell], Any] | None = None
    scope: Scope | None = None


def task_body(cell: Cell) -> dict[str, Any]:
    return {"command": cell.command, "payload": {"n": 2}}


def claim_body(cell: Cell) -> dict[str, Any]:
    return {"commands": [cell.command]}


def result_body(cell: Cell) -> dict[str, Any]:
    return {"status": "COMPLETED", "result": {"done": 1}}


def batch_results_body(cell: Cell) -> dict[str, Any]:
    return {"results": [{"taskId": cell.task_id, **result_body(cell)}]}


def subscribe_body(cell: Cell) -> dict[str, Any]:
    return {"callbackUrl": "http://127.0.0.1:9/hook", "eventTypes": [cell.command]}


def empty(cell: Cell) -> dict[str, Any]:
    return {}


TASK = ("task_id",)
QUEUE = ("command",)
SUBSCRIPTION = ("subscription_id",)

MATRIX: dict[tuple[str, str], Row] = {
    # -- open to everyone ---------------------------------------------------------------
    ("GET", "/healthz"): Row(public()),
    ("GET", "/readyz"): Row(public()),
    ("GET", "/metrics"): Row(public()),
    ("GET", "/openapi.json"): Row(public()),
    ("GET", "/docs"): Row(public()),
    ("GET", "/docs/oauth2-redirect"): Row(public()),
    ("GET", "/ui"): Row(public(307)),
    ("GET", "/ui/"): Row(public()),
    ("GET", "/ui/assets/{name}"): Row(public(), params=("asset",)),
    # dev mode only, from loopback only (docs/dashboard.md); 404 in prod.
    ("GET", "/ui/dev-token"): Row(public()),
    # -- producers ----------------------------------------------------------------------
    ("POST", f"{API}/tasks"): Row(producer(202), body=task_body),
    ("POST", f"{API}/tasks/batch"): Row(producer(200),
                                        body=lambda c: {"tasks": [task_body(c)]}),
    ("GET", f"{API}/tasks"): Row(producer(200)),
    ("POST", f"{API}/tasks/{{task_id}}/cancel"): Row(producer(200), Cell.create, TASK),
    # -- anyone with a valid token --------------------------------------------------------
    ("GET", f"{API}/tasks/{{task_id}}"): Row(any_token(), Cell.create, TASK),
    ("GET", f"{API}/tasks/{{task_id}}/result"): Row(any_token(), Cell.complete, TASK),
    ("GET", f"{API}/tasks/{{task_id}}/artifacts/{{name}}"): Row(
        any_token(), Cell.complete_with_artifact, ("task_id", "artifact")),
    # -- workers --------------------------------------------------------------------------
    ("POST", f"{API}/tasks/claim"): Row(worker(200, other_events=403, stranger=200),
                                        Cell.create, body=claim_body, scope=Scope.CLAIM),
    ("POST", f"{API}/tasks/claim/batch"): Row(worker(200, other_events=403, stranger=200),
                                              Cell.create, body=claim_body, scope=Scope.CLAIM),
    ("POST", f"{API}/tasks/{{task_id}}/heartbeat"): Row(lease_holder(), Cell.lease, TASK,
                                                        empty, Scope.HEARTBEAT),
    ("POST", f"{API}/tasks/{{task_id}}/abandon"): Row(lease_holder(), Cell.lease, TASK, empty,
                                                      Scope.ABANDON),
    ("POST", f"{API}/tasks/{{task_id}}/nack"): Row(lease_holder(), Cell.lease, TASK, empty,
                                                   Scope.NACK),
    ("POST", f"{API}/tasks/{{task_id}}/result"): Row(lease_holder(), Cell.lease, TASK,
                                                     result_body, Scope.RESULT),
    # A batch answers 200; a refused item carries its own status.
    ("POST", f"{API}/tasks/batch/results"): Row(
        worker((200, 200), other_events=(200, 200), stranger=(200, 403)), Cell.lease,
        body=batch_results_body, scope=Scope.RESULT),
    ("POST", f"{API}/workers/subscriptions"): Row(
        worker(200, other_events=403, stranger=200), body=subscribe_body,
        scope=Scope.SUBSCRIBE),
    ("POST", f"{API}/workers/subscriptions/{{id}}/heartbeat"): Row(
        worker(200, other_events=200, stranger=403), Cell.subscribe, SUBSCRIPTION, empty,
        Scope.SUBSCRIBE),
    ("DELETE", f"{API}/workers/subscriptions/{{id}}"): Row(
        worker(204, other_events=204, stranger=403), Cell.subscribe, SUBSCRIPTION,
        scope=Scope.SUBSCRIBE),
    # -- operators ------------------------------------------------------------------------
    ("GET", f"{API}/admin/queues"): Row(admin()),
    ("GET", f"{API}/admin/queues/{{command}}"): Row(admin(), Cell.create, QUEUE),
    ("GET", f"{API}/admin/queues/{{command}}/dlq"): Row(admin(), Cell.create, QUEUE),
    ("POST", f"{API}/admin/queues/{{command}}/dlq/redrive"): Row(admin(), Cell.create, QUEUE,
                                                                 empty),
    ("POST", f"{API}/admin/queues/{{command}}/pause"): Row(admin(), Cell.create, QUEUE),
    ("POST", f"{API}/admin/queues/{{command}}/resume"): Row(admin(), Cell.create, QUEUE),
    ("POST", f"{API}/admin/tasks/cleanup"): Row(admin(), body=empty),
}


# -- the app's routes -------------------------------------------------------------------
_PARAM = re.compile(r"\{[^}]*\}")


def shape(path: str) -> str:
    """A path template with its parameter names erased: ``/tasks/{}``."""
    return _PARAM.sub("{}", path)


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path template) the app of a dev server answers (HEAD aside)."""
    app = create_app(Settings.model_validate({}))
    found = set()
    for route in iter_route_contexts(app.router.routes):
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, shape(route.path or "")))
    return found


ROWS = {(method, shape(path)): (path, row) for (method, path), row in MATRIX.items()}


@pytest.fixture(scope="module")
def served() -> set[tuple[str, str]]:
    return app_routes()


def test_every_route_has_a_row(served: set[tuple[str, str]]) -> None:
    missing = sorted(served - set(ROWS))
    assert not missing, ("routes without an authorization rule; add a row to MATRIX in "
                         f"{__file__}: {missing}")
    stale = sorted(set(ROWS) - served)
    assert not stale, f"rows for routes the app does not serve; remove them: {stale}"


# -- the cells ------------------------------------------------------------------------
def headers_for(server: ServerProcess, column: str, scope: Scope | None) -> dict[str, str]:
    if column == "none":
        return {}
    if column == "x_role":
        return {**server.headers("producer"), "X-Role": "ADMIN"}
    if column in ("producer", "admin"):
        return server.headers(column)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {"sub": STRANGER if column == "stranger" else OWNER}
    if column == "no_scope":
        kwargs["scopes"] = sorted(WORKER_SCOPES - {scope}) if scope else []
    if column == "other_events":
        kwargs["events"] = ["MX_SOMETHING_ELSE"]
    return server.headers("worker", **kwargs)


def observe(response: httpx.Response, expected: Expected) -> Expected:
    """The status, and for batch answers the first item's status (``code`` when refused)."""
    if not isinstance(expected, tuple):
        return response.status_code
    if response.status_code != 200:
        return response.status_code
    item = response.json()["results"][0]
    return response.status_code, int(item.get("code", 200))


def call(api: httpx.Client, server: ServerProcess, method: str, path: str, row: Row, cell: Cell,
         column: str) -> httpx.Response:
    values = {"asset": "app.js", "task_id": cell.task_id, "command": cell.command,
              "subscription_id": cell.subscription_id, "artifact": cell.artifact}
    names = iter(row.params)
    url = _PARAM.sub(lambda _: values[next(names)], path)
    return api.request(method, url, headers=headers_for(server, column, row.scope),
                       json=row.body(cell) if row.body else None)


@pytest.fixture(scope="module")
def api(sqlite_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_server.base_url, timeout=30.0) as client:
        yield client


@pytest.mark.parametrize("method,path", sorted(MATRIX), ids=[f"{m} {p}" for m, p in
                                                              sorted(MATRIX)])
def test_route_matrix(method: str, path: str, api: httpx.Client,
                      sqlite_server: ServerProcess) -> None:
    row = MATRIX[(method, path)]
    mismatches = {}
    for column in COLUMNS:
        cell = Cell(api, sqlite_server)
        row.setup(cell)
        response = call(api, sqlite_server, method, path, row, cell, column)
        got = observe(response, row.expect[column])
        if got != row.expect[column]:
            mismatches[column] = (got, row.expect[column], response.text[:200])
    assert not mismatches, f"{method} {path}: column -> (got, expected, body): {mismatches}"


ID_ROUTES = sorted(key for key, row in MATRIX.items()
                   if {"task_id", "subscription_id"} & set(row.params))


@pytest.mark.parametrize("method,path", ID_ROUTES, ids=[f"{m} {p}" for m, p in ID_ROUTES])
def test_unknown_ids_are_404(method: str, path: str, api: httpx.Client,
                             sqlite_server: ServerProcess) -> None:
    """A caller who would be allowed, asking for a task or subscription that does not exist."""
    row = MATRIX[(method, path)]
    column = next(c for c in ("owner", "producer") if row.expect[c] in (200, 202, 204))
    cell = Cell(api, sqlite_server, task_id=str(uuid.uuid4()),
                subscription_id=str(uuid.uuid4()))
    response = call(api, sqlite_server, method, path, row, cell, column)
    assert response.status_code == 404 and response.json()["error"], response.text


# -- X-Role outside dev mode ---------------------------------------------------------------
def test_x_role_gives_nothing_outside_dev_mode(prod_server: ProdServer,
                                               http: httpx.Client) -> None:
    url = f"{prod_server.server.api_url}/admin/queues"
    static = {"Authorization": f"Bearer {prod_server.static_token}"}
    assert http.get(url, headers={**static, "X-Role": "ADMIN"}).status_code == 403
    assert http.get(url, headers=static).status_code == 403
    admin_token = {"Authorization": f"Bearer {prod_server.admin_token}"}
    assert http.get(url, headers=admin_token).status_code == 200
    worker_token = {"Authorization": f"Bearer {prod_server.worker_token()}", "X-Role": "ADMIN"}
    assert http.get(url, headers=worker_token).status_code == 403
