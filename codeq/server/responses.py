"""JSON responses serialized with orjson."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse


def dumps(content: Any) -> bytes:
    """orjson, falling back to the standard library for what orjson refuses (integers
    wider than 64 bits in a payload), so a value accepted on the way in goes back out."""
    try:
        return orjson.dumps(content)
    except TypeError:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
