"""JSON responses, written by ``codeq.core.jsontext.dumps`` (orjson when it can)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from codeq.core.jsontext import dumps


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
