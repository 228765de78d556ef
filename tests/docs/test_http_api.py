"""docs/http-api.md shows an example request for every route the server documents."""

from __future__ import annotations

import re
from pathlib import Path

from codeq.core.config import Settings
from codeq.server.app import create_app

HTTP_API = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"


def example_request_lines() -> list[str]:
    """The first line of every exchange in the document's ``http`` blocks."""
    blocks = re.findall(r"^```http\n(.*?)^```", HTTP_API.read_text(), re.DOTALL | re.MULTILINE)
    return [line for block in blocks for line in block.splitlines()
            if re.match(r"^(GET|POST|PUT|PATCH|DELETE) /", line)]


def route_pattern(method: str, template: str) -> re.Pattern[str]:
    """``POST /v1/codeq/tasks/{task_id}/cancel`` matches any value in place of the id."""
    path = re.sub(r"\\\{[^}]+\\\}", r"[^/\\s?]+", re.escape(template))
    return re.compile(rf"^{method.upper()} {path}(\?\S*)?$")


def test_every_route_has_an_example_request() -> None:
    document = create_app(Settings.model_validate({})).openapi()
    lines = example_request_lines()
    missing = [f"{method.upper()} {path}" for path, operations in document["paths"].items()
               for method in operations
               if not any(route_pattern(method, path).match(line) for line in lines)]
    assert not missing, f"docs/http-api.md has no example request for: {missing}"


def test_the_pattern_tells_routes_apart() -> None:
    cancel = route_pattern("post", "/v1/codeq/tasks/{task_id}/cancel")
    assert cancel.match("POST /v1/codeq/tasks/2009…/cancel")
    assert not cancel.match("POST /v1/codeq/tasks/2009…/result")
    assert not route_pattern("get", "/v1/codeq/tasks/{task_id}").match(
        "GET /v1/codeq/tasks/claim/batch")
