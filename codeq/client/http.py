"""``Client`` and ``AsyncClient``: the HTTP API over httpx, with typed errors and retries.

Retry rules (``retries`` extra attempts, exponential backoff with full jitter):

* A request that never reached the server (connection refused, DNS failure,
  connect timeout) is retried whatever the route: nothing happened yet.
* A call that is safe to repeat (``Call.idempotent``: reads, heartbeats,
  result submission, cancel, pause/resume, creation with an idempotency key)
  is also retried after a lost answer (read timeout, reset) and on 502/503/504.
* A claim is *not* repeated after the request was sent: the server may have
  leased a task whose answer was lost, and a second claim would lease another
  one while the first stays stranded until its lease expires. The worker
  runtime claims again on its own schedule instead; keep leases short enough
  that such a lease is recovered quickly.
* Plain creates, nacks and abandons are not repeated either: a lost answer
  could hide a success, and a repeat would then create twice or answer 409.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from codeq import __version__
from codeq.client import calls
from codeq.client.calls import API, ROOT_PATHS, Call
from codeq.client.errors import ApiError, ConnectionFailed, InvalidRequest, ServerError, error_for
from codeq.core.domain import new_id

if TYPE_CHECKING:
    from codeq.client.h1 import H1Sender

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_BASE_URL = "http://localhost:8080"
#: Errors after which the request surely never reached the server.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_RETRY_DELAY = 5.0


@dataclass(slots=True)
class ClientConfig:
    """Everything a client needs; shared so a sync client can make an async twin."""

    base_url: str = DEFAULT_BASE_URL
    token: str | None = None
    producer_token: str | None = None
    worker_token: str | None = None
    admin: bool = False
    timeout: float = 30.0
    retries: int = 3
    retry_backoff: float = 0.25
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Connections kept to the server. Few is faster: httpx's pool does work per open
    #: connection on every request (32 connections cost ~3x the CPU per call of 8).
    max_connections: int = 8

    @property
    def limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=self.max_connections,
                            max_keepalive_connections=self.max_connections)

    def token_for(self, role: calls.Role) -> str | None:
        if role == "worker":
            return self.worker_token or self.token
        if role == "any":
            return self.producer_token or self.worker_token or self.token
        if role == "none":
            return None
        return self.producer_token or self.token

    def request(self, call: Call[Any], request_id: str) -> dict[str, Any]:
        headers = {"User-Agent": f"codeq-python/{__version__}", "X-Request-Id": request_id,
                   **self.headers}
        token = self.token_for(call.role)
        if token and not (token.isascii() and token.isprintable()):
            raise InvalidRequest("the token holds characters an HTTP header cannot carry "
                                 "(non-ASCII, line breaks or other control characters)")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if call.role == "admin" and self.admin:
            headers["X-Role"] = "ADMIN"
        path = call.path if call.path in ROOT_PATHS else API + call.path
        kwargs: dict[str, Any] = {"method": call.method, "url": path, "headers": headers,
                                  "params": dict(call.params)}
        if call.method not in ("GET", "DELETE"):
            kwargs["json"] = call.body if call.body is not None else {}
        if call.timeout is not None:
            kwargs["timeout"] = max(call.timeout, self.timeout)
        return kwargs

    def retry_delay(self, attempt: int) -> float:
        return random.uniform(0, min(MAX_RETRY_DELAY, self.retry_backoff * 2 ** attempt))


def _should_retry(call: Call[Any], error: Exception) -> bool:
    cause = error.__cause__ if isinstance(error, ConnectionFailed) else error
    if isinstance(cause, UNSENT):
        return True
    if not call.idempotent:
        return False
    if isinstance(error, ConnectionFailed):
        return True
    return isinstance(error, ApiError) and error.status in RETRY_STATUSES


def _outcome(call: Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text.strip()[:500] or None}
        raise error_for(response.status_code, body, response.headers.get("x-request-id"))
    try:
        return call.parse(response)
    except (ValueError, KeyError, TypeError):
        raise ServerError(f"unexpected answer to {call.method} {call.path}: "
                          f"{response.text.strip()[:200]!r}; is the base URL a codeq server?", status=response.status_code,
                          request_id=response.headers.get("x-request-id")) from None


def _unsendable(call: Call[Any], exc: ValueError | TypeError) -> InvalidRequest:
    """A request that cannot be built: JSON without a JSON form (NaN, Infinity), text with
    lone surrogates, values of other types."""
    return InvalidRequest(f"cannot send {call.method} {call.path}: {exc}")


def _connection_failed(config: ClientConfig, exc: httpx.TransportError) -> ConnectionFailed:
    reason = str(exc) or type(exc).__name__
    return ConnectionFailed(f"cannot reach the codeq server at {config.base_url}: {reason}")


def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[Client, P], T]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    functools.update_wrapper(method, build)
    return method


def _async(build: Callable[P, Call[T]]
           ) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    functools.update_wrapper(method, build)
    return method


def checked_base_url(url: str) -> str:
    """The server URL without surrounding blanks and trailing slashes; InvalidRequest
    for what cannot be one (httpx raised InvalidURL, or every call failed as if the
    server were down, or a query silently sent every call to another path)."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises on a port out of range)
        httpx.URL(text)
    except (ValueError, httpx.InvalidURL) as exc:
        raise InvalidRequest(f"base URL {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"base URL {url!r} needs http:// or https:// and a host, such as "
                             f"{DEFAULT_BASE_URL}")
    if "?" in text or "#" in text:
        raise InvalidRequest(f"base URL {url!r} must not have a query or a fragment")
    return text.rstrip("/")


class _Base:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: str | None = None, *,
                 producer_token: str | None = None, worker_token: str | None = None,
                 admin: bool = False, timeout: float = 30.0, retries: int = 3,
                 retry_backoff: float = 0.25, headers: Mapping[str, str] | None = None,
                 max_connections: int = 8, config: ClientConfig | None = None) -> None:
        self.config = config or ClientConfig(
            base_url=checked_base_url(base_url), token=token, producer_token=producer_token,
            worker_token=worker_token, admin=admin, timeout=timeout, retries=retries,
            retry_backoff=retry_backoff, headers=dict(headers or {}),
            max_connections=max_connections)

    @property
    def base_url(self) -> str:
        return self.config.base_url


class Client(_Base):
    """Synchronous client: one method per route, e.g. ``Client(url, token).create_task(...)``.

    ``token`` is used for every call; ``producer_token`` / ``worker_token``
    override it for producer and admin routes / worker routes. ``admin=True``
    adds ``X-Role: ADMIN`` to admin routes (honoured by dev-mode servers only).
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: str | None = None,
                 **options: Any) -> None:
        transport = options.pop("transport", None)
        super().__init__(base_url, token, **options)
        self._http = httpx.Client(base_url=self.config.base_url, timeout=self.config.timeout,
                                  limits=self.config.limits, transport=transport)

    def send(self, call: Call[T]) -> T:
        """Execute one call with the retry rules of this module."""
        request_id = new_id()
        attempt = 0
        while True:
            try:
                try:
                    response = self._http.request(**self.config.request(call, request_id))
                except httpx.TransportError as exc:
                    raise _connection_failed(self.config, exc) from exc
                except (ValueError, TypeError) as exc:
                    if isinstance(exc, InvalidRequest):
                        raise
                    raise _unsendable(call, exc) from exc
                return _outcome(call, response)
            except ApiError as error:
                if attempt >= self.config.retries or not _should_retry(call, error):
                    raise
            time.sleep(self.config.retry_delay(attempt))
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    create_task = _sync(calls.create_task)
    create_tasks = _sync(calls.create_tasks)
    list_tasks = _sync(calls.list_tasks)
    get_task = _sync(calls.get_task)
    get_result = _sync(calls.get_result)
    cancel_task = _sync(calls.cancel_task)
    get_artifact = _sync(calls.get_artifact)
    claim = _sync(calls.claim)
    claim_batch = _sync(calls.claim_batch)
    heartbeat = _sync(calls.heartbeat)
    abandon = _sync(calls.abandon)
    nack = _sync(calls.nack)
    submit_result = _sync(calls.submit_result)
    submit_results = _sync(calls.submit_results)
    subscribe = _sync(calls.subscribe)
    renew_subscription = _sync(calls.renew_subscription)
    unsubscribe = _sync(calls.unsubscribe)
    list_queues = _sync(calls.list_queues)
    get_queue = _sync(calls.get_queue)
    list_dlq = _sync(calls.list_dlq)
    redrive = _sync(calls.redrive)
    pause_queue = _sync(calls.pause_queue)
    resume_queue = _sync(calls.resume_queue)
    cleanup = _sync(calls.cleanup)
    healthz = _sync(calls.healthz)
    readyz = _sync(calls.readyz)
    metrics = _sync(calls.metrics)


class AsyncClient(_Base):
    """The asyncio twin of ``Client``: the same methods, awaited."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: str | None = None,
                 **options: Any) -> None:
        transport = options.pop("transport", None)
        super().__init__(base_url, token, **options)
        self._http: httpx.AsyncClient | H1Sender
        if transport is None:
            # Imported here: the command line (all on the sync client) needs none of it.
            from codeq.client.h1 import H1Sender

            self._http = H1Sender(self.config.base_url, self.config.timeout,
                                  self.config.limits)
        else:
            self._http = httpx.AsyncClient(base_url=self.config.base_url,
                                           timeout=self.config.timeout,
                                           limits=self.config.limits, transport=transport)

    @classmethod
    def from_config(cls, config: ClientConfig) -> AsyncClient:
        return cls(config=config)

    async def send(self, call: Call[T]) -> T:
        """Execute one call with the retry rules of this module."""
        request_id = new_id()
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.request(**self.config.request(call, request_id))
                except httpx.TransportError as exc:
                    raise _connection_failed(self.config, exc) from exc
                except (ValueError, TypeError) as exc:
                    if isinstance(exc, InvalidRequest):
                        raise
                    raise _unsendable(call, exc) from exc
                return _outcome(call, response)
            except ApiError as error:
                if attempt >= self.config.retries or not _should_retry(call, error):
                    raise
            await asyncio.sleep(self.config.retry_delay(attempt))
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    create_task = _async(calls.create_task)
    create_tasks = _async(calls.create_tasks)
    list_tasks = _async(calls.list_tasks)
    get_task = _async(calls.get_task)
    get_result = _async(calls.get_result)
    cancel_task = _async(calls.cancel_task)
    get_artifact = _async(calls.get_artifact)
    claim = _async(calls.claim)
    claim_batch = _async(calls.claim_batch)
    heartbeat = _async(calls.heartbeat)
    abandon = _async(calls.abandon)
    nack = _async(calls.nack)
    submit_result = _async(calls.submit_result)
    submit_results = _async(calls.submit_results)
    subscribe = _async(calls.subscribe)
    renew_subscription = _async(calls.renew_subscription)
    unsubscribe = _async(calls.unsubscribe)
    list_queues = _async(calls.list_queues)
    get_queue = _async(calls.get_queue)
    list_dlq = _async(calls.list_dlq)
    redrive = _async(calls.redrive)
    pause_queue = _async(calls.pause_queue)
    resume_queue = _async(calls.resume_queue)
    cleanup = _async(calls.cleanup)
    healthz = _async(calls.healthz)
    readyz = _async(calls.readyz)
    metrics = _async(calls.metrics)
