"""How ``AsyncClient`` sends by default: straight through aiohttp's connection pool and C
HTTP parser, with httpx's request arguments and answers. Building httpx's own request
and URL objects costs as much CPU as aiohttp's whole exchange, and a busy worker or
producer spends most of its time sending; this takes about a sixth of the CPU per
request of httpx (``benchmarks/client_cost.py``). ``AsyncClient(transport=)`` still
sends through httpx, with any httpx transport.

The failures are httpx's, mapped so that the client's retry rules stay true: only a
failure before the request could leave (no connection made, none free in the pool
in time) is a ``ConnectError`` / ``ConnectTimeout``. A failure after that (reset,
disconnect, read timeout, a malformed answer) may hide a request the server
processed, so it is a ``ReadError``, ``RemoteProtocolError`` or ``ReadTimeout``.
"""

from __future__ import annotations

import json as stdjson
import ssl
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import aiohttp
import httpx
import yarl

#: An idle connection kept "for ever" (``keepalive_expiry=None``): aiohttp needs a number.
NO_EXPIRY = 24 * 3600.0
#: aiohttp's failures, most specific first, and the httpx error each becomes.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientError, httpx.ReadError),
)
_NO_BODY = object()


def _as_httpx(exc: Exception) -> httpx.TransportError:
    kind = next(mapped for source, mapped in _ERRORS if isinstance(exc, source))
    return kind(str(exc) or type(exc).__name__)


def _json_body(value: Any) -> bytes:
    """The body httpx's ``json=`` sends, byte for byte."""
    return stdjson.dumps(value, ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False).encode()


@lru_cache(maxsize=16)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    """httpx's one timeout for connecting, waiting for a pooled connection and each read."""
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds,
                                 sock_read=seconds)


class AiohttpSender:
    """``request(**kwargs)`` and ``aclose()`` like ``httpx.AsyncClient``, for the arguments
    ``ClientConfig.request`` builds. One aiohttp session per client, opened on the first
    request (it belongs to the running event loop) and closed with the client. HTTPS
    verifies like httpx does."""

    def __init__(self, base_url: str, timeout: float, limits: httpx.Limits) -> None:
        self._base_url = base_url
        self._default_timeout = timeout
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | bool = True

    def _open(self) -> aiohttp.ClientSession:
        if self._base_url.startswith("https:"):
            self._tls = httpx.create_ssl_context()
        keepalive = self._limits.keepalive_expiry
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0, ssl=self._tls,
            keepalive_timeout=NO_EXPIRY if keepalive is None else keepalive)
        return aiohttp.ClientSession(connector=connector,
                                     skip_auto_headers=("User-Agent", "Content-Type"))

    async def request(self, method: str, url: str, *, headers: Mapping[str, str],
                      params: Mapping[str, Any], json: Any = _NO_BODY,
                      timeout: float | None = None) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        target = self._base_url + url  # quoted already, sent as it is
        if params:
            target += f"?{httpx.QueryParams(params)}"
        body = None
        if json is not _NO_BODY:
            body = _json_body(json)
            headers = {**headers, "Content-Type": "application/json"}
        seconds = self._default_timeout if timeout is None else timeout
        try:
            async with self._session.request(
                    method, yarl.URL(target, encoded=True), headers=headers, data=body,
                    allow_redirects=False, timeout=_timeout(seconds)) as answer:
                content = await answer.read()
        except aiohttp.ClientError as exc:
            raise _as_httpx(exc) from exc
        return httpx.Response(answer.status, headers=answer.raw_headers, content=content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
