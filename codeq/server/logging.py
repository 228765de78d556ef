"""Logging for the server: one line per record, text or JSON, with the request id.

The request id lives in a context variable set by the request middleware, so
every record logged while a request is handled carries it, whichever logger
wrote it. Messages are scrubbed of bearer tokens and JWT-shaped strings before
they are written: a token must never reach a log file.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from codeq.core.config import Settings

request_id: ContextVar[str | None] = ContextVar("codeq_request_id", default=None)

_SECRET = re.compile(r"(?i)(bearer\s+)\S+|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
#: Attributes every ``LogRecord`` has; anything else came in through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "request_id", "taskName", "color_message"}


def redact(text: str) -> str:
    lowered = text.lower()
    if "bearer" not in lowered and "eyj" not in lowered:  # neither pattern can match
        return text
    return _SECRET.sub(lambda m: f"{m.group(1)}[redacted]" if m.group(1) else "[redacted]", text)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    fields = vars(record)
    if fields.keys() <= _STANDARD:  # the usual record: no extra= given
        return {}
    return {k: v for k, v in fields.items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": getattr(record, "request_id", None),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def setup_logging(settings: Settings) -> None:
    """Route every logger (uvicorn's too) to one stderr handler in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The access log is ours (codeq.access, with the request id); uvicorn's would double it.
    logging.getLogger("uvicorn.access").disabled = True
