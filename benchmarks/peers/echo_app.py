"""A do-nothing ASGI app for ``benchmarks/client_cost.py``: reads the request body and
answers a small JSON object, so that what a client spends per request is what is left."""

from __future__ import annotations

from typing import Any

ANSWER = b'{"id":"0b1c8b1e-8c1a-4c3e-9d7f-2b6a8e1c4d50","status":"PENDING"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": ANSWER})
