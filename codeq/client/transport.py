"""The transport under ``AsyncClient``: httpx's API over aiohttp's connection pool and
C HTTP parser, which take about half the CPU per request of httpx's own transport
(what a busy worker or producer spends most of its time on).

Its errors are httpx's, mapped so that the client's retry rules stay true: only a
failure before the request could leave (no connection made, none free in the pool
in time) is a ``ConnectError`` / ``ConnectTimeout``. A failure after that (reset,
disconnect, read timeout, a malformed answer) may hide a request the server
processed, so it is a ``ReadError``, ``RemoteProtocolError`` or ``ReadTimeout``.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx

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


def _as_httpx(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    kind = next(mapped for source, mapped in _ERRORS if isinstance(exc, source))
    return kind(str(exc) or type(exc).__name__, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per client, opened on the first request (it belongs to the
    running event loop) and closed with the client. HTTPS verifies like httpx does."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | None = None

    def _open(self) -> aiohttp.ClientSession:
        keepalive = self._limits.keepalive_expiry
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=NO_EXPIRY if keepalive is None else keepalive)
        # httpx sets every header and decodes the body; aiohttp adds nothing of its own.
        return aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     skip_auto_headers=("User-Agent", "Accept",
                                                        "Accept-Encoding", "Content-Type"))

    def _tls_for(self, url: httpx.URL) -> ssl.SSLContext | bool:
        if url.scheme != "https":
            return True  # unused
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            async with self._session.request(
                    request.method, str(request.url), headers=list(request.headers.multi_items()),
                    data=await request.aread() or None, allow_redirects=False,
                    ssl=self._tls_for(request.url),
                    timeout=aiohttp.ClientTimeout(total=None, connect=timeout.get("pool"),
                                                  sock_connect=timeout.get("connect"),
                                                  sock_read=timeout.get("read"))) as answer:
                body = await answer.read()
        except aiohttp.ClientError as exc:
            raise _as_httpx(exc, request) from exc
        return httpx.Response(answer.status, headers=answer.raw_headers,
                              stream=httpx.ByteStream(body), request=request,
                              extensions={"http_version": b"HTTP/1.1",
                                          "reason_phrase": (answer.reason or "").encode()})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
