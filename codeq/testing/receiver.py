"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every POST.

::

    with Receiver.start(failures=3) as receiver:   # 500 three times, then 200
        ... create a task with webhook=receiver.url("/done") ...
        [request] = receiver.wait_for(1, path="/done")
        assert verify_signature(secret, request.headers["x-codeq-timestamp"], request.body,
                                request.headers["x-codeq-signature"])

``port`` pins the port, so a test can take the receiver down and bring it back
where the server expects it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lowercase
    body: bytes  # raw, as sent
    at: float  # time.time() on arrival
    status: int  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, server: ThreadingHTTPServer, failures: int) -> None:
        self._server = server
        self._lock = threading.Condition()
        self.failures = failures
        self.requests: list[Received] = []

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            status = 500 if self.failures > 0 else 200
            self.failures = max(0, self.failures - 1)
            self.requests.append(Received(path, headers, body, time.time(), status))
            self._lock.notify_all()
            return status

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, count: int, *, path: str | None = None,
                 timeout: float = 10.0) -> list[Received]:
        """The first ``count`` requests (to ``path``), waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self.requests if path is None or r.path == path]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    break
                self._lock.wait(remaining)
        if len(found) < count:
            raise AssertionError(f"expected {count} request(s) to {path or 'any path'}, "
                                 f"got {len(found)} within {timeout}s")
        return found[:count]

    @classmethod
    @contextmanager
    def start(cls, *, failures: int = 0, port: int = 0) -> Iterator[Receiver]:
        """Listen on 127.0.0.1 (``port`` 0: a free one) until the block ends."""
        holder: list[Receiver] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = holder[0]._record(self.path, headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        receiver = cls(server, failures)
        holder.append(receiver)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield receiver
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
