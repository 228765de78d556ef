"""Schema-driven fuzzing of every operation ``/openapi.json`` lists, against a live server.

schemathesis generates valid and invalid requests for each operation (one
pytest item per operation, so routes added later are covered without touching
this file) and checks each answer: no 5xx, a status the operation documents,
the documented content type, and a body that matches the documented schema.
A second test runs chains of calls in which ids from one answer feed the next
request (create, then get, cancel, claim, heartbeat ...), so that the routes
on a task see real tasks, not only unknown ids.

Each request carries the token the operation's ``x-codeq-auth`` asks for
(producer, worker or admin); an operation without one gets an admin token,
and the server lets producer tokens act as workers, so an undeclared worker
route is still exercised past the auth check.

Bounded and reproducible: ``MAX_EXAMPLES`` per operation, ``STATEFUL_EXAMPLES``
chains of at most ``STATEFUL_STEPS`` calls, derandomized Hypothesis (a fixed
seed, no example database), and ``BUDGET_SECONDS`` for the whole module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from codeq.core.config import Settings
from codeq.server.app import create_app
from codeq.testing.server import ServerProcess

MAX_EXAMPLES = 20
BUDGET_SECONDS = 90.0
LONG_POLL_SECONDS = 0.2
STATEFUL_EXAMPLES = 12
STATEFUL_STEPS = 8
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance,
          content_type_conformance, response_schema_conformance]
CONFIG = {"allowProducerAsWorker": True, "maxBodyBytes": 64 * 1024}


class Budget:
    """Wall-clock budget shared by every operation of the module."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            pytest.fail(f"the OpenAPI fuzz run went over its {BUDGET_SECONDS:.0f} s budget; "
                        "lower MAX_EXAMPLES")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("fuzz"), config=CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def budget(fuzz_server: ServerProcess) -> Budget:
    return Budget(BUDGET_SECONDS)


@pytest.fixture(scope="module")
def tokens(fuzz_server: ServerProcess) -> dict[str, dict[str, str]]:
    """Request headers per ``x-codeq-auth`` role."""
    producer = fuzz_server.headers("producer", sub="fuzz-producer")
    return {
        "producer": producer,
        "producer-or-admin": producer,
        "any": producer,
        "worker": fuzz_server.headers("worker", sub="fuzz-worker"),
        "admin": {**producer, "X-Role": "ADMIN"},  # dev mode: the CLI's --admin
        "none": {},
    }


def served_document() -> dict[str, Any]:
    """The document a server with ``CONFIG`` serves, built in-process so that pytest can
    collect one item per operation (a test checks the live server serves the same)."""
    return create_app(Settings.model_validate(CONFIG)).openapi()


schema = schemathesis.openapi.from_dict(served_document(), config=SchemathesisConfig())


def shorten_long_poll(case: Any) -> None:
    """A claim may wait up to 30 s for work by design; keep valid waits short here."""
    body = case.body
    if isinstance(body, dict):
        wait = body.get("waitSeconds")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 30:
            body["waitSeconds"] = min(wait, LONG_POLL_SECONDS)


def headers_for(case: Any, tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    """The case's own headers with the credentials its operation's ``x-codeq-auth``
    asks for in place of generated ones (an admin token when it declares none)."""
    declared = case.operation.definition.raw.get("x-codeq-auth")
    credentials = tokens[str(declared["role"]) if declared else "admin"]
    replaced = {name.lower() for name in ("Authorization", "X-Role")}
    return {**{name: value for name, value in (case.headers or {}).items()
               if name.lower() not in replaced}, **credentials}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_honours_its_schema(case: Any, fuzz_server: ServerProcess,
                                            tokens: dict[str, dict[str, str]],
                                            budget: Budget) -> None:
    budget.check()
    shorten_long_poll(case)
    case.call_and_validate(base_url=fuzz_server.base_url, headers=headers_for(case, tokens),
                           checks=CHECKS, timeout=10)


def test_chains_of_calls_honour_the_schema(fuzz_server: ServerProcess,
                                           tokens: dict[str, dict[str, str]],
                                           budget: Budget) -> None:
    """Sequences of calls that feed one answer's ids into the next request (create, then
    get, cancel, claim, heartbeat, result ...), so that routes see real tasks."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            budget.check()
            shorten_long_poll(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzz_server.base_url, "timeout": 10,
                    "headers": headers_for(case, tokens)}

        def validate_response(self, response: Any, case: Any, *_: Any, **__: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS, derandomize=True,
        database=None, deadline=None, suppress_health_check=list(HealthCheck)))


def test_the_live_server_serves_the_fuzzed_document(fuzz_server: ServerProcess) -> None:
    served = httpx.get(f"{fuzz_server.base_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == served_document()


def test_every_operation_documents_auth_and_answers() -> None:
    """Each operation says who may call it and what it answers; none documents FastAPI's
    422 (codeq answers invalid input with 400) and every error is one ``ErrorBody``."""
    undocumented = []
    for path, operations in schema.raw_schema["paths"].items():
        for method, op in operations.items():
            statuses = set(op["responses"])
            if "x-codeq-auth" not in op or not any(s.startswith("2") for s in statuses):
                undocumented.append(f"{method.upper()} {path}")
            assert "422" not in statuses, f"{method.upper()} {path}"
            for status in statuses - {"default"}:
                if int(status) >= 400:
                    body = op["responses"][status]["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    assert not undocumented, f"operations without x-codeq-auth or a 2xx answer: {undocumented}"
