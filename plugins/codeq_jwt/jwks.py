"""Verification keys: a remote JWKS (cached, refetched on rotation) or fixed keys."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from codeq.core.errors import Unauthenticated

log = logging.getLogger("codeq.jwt")

#: A JWKS larger than this is refused (a key set is a few KiB at most).
MAX_JWKS_BYTES = 1024 * 1024


class KeySource(Protocol):
    async def get(self, kid: str | None) -> dict[str, Any]:
        """The JWK for ``kid``; raises ``Unauthenticated`` when there is none."""
        ...


def public_url(url: str) -> str:
    """``url`` without credentials or query, fit for error messages and logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _index(jwks: Any, origin: str) -> dict[str | None, dict[str, Any]]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        # a bad document, like bad JSON: the callers' ValueError
        raise ValueError(f"{origin} is not a JWKS (an object with a 'keys' list)")  # noqa: TRY004
    keys = [k for k in jwks["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    return {k.get("kid"): k for k in keys}


def _pick(keys: dict[str | None, dict[str, Any]], kid: str | None) -> dict[str, Any] | None:
    """The key named ``kid``; a token without ``kid`` is accepted only by a one-key set."""
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


class StaticKeys:
    """A fixed key set (the dev key)."""

    def __init__(self, jwks: dict[str, Any], origin: str) -> None:
        self.origin = origin
        self._keys = _index(jwks, origin)

    async def get(self, kid: str | None) -> dict[str, Any]:
        key = _pick(self._keys, kid)
        if key is None:
            raise Unauthenticated(f"token signing key kid={kid!r} is not the {self.origin}")
        return key


class RemoteJwks:
    """A JWKS fetched over HTTP(S) and cached.

    The set is fetched on first use and again when it is older than
    ``max_age_seconds`` or a token names a ``kid`` it lacks (key rotation), but
    never more often than once per ``min_refetch_seconds``, so a flood of
    tokens with made-up ``kid`` values cannot hammer the identity provider.
    When a refetch fails the last good set stays in use.
    """

    def __init__(self, url: str, *, min_refetch_seconds: float = 30.0,
                 max_age_seconds: float = 600.0, timeout_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.shown_url = public_url(url)
        self.min_refetch_seconds = min_refetch_seconds
        self.max_age_seconds = max_age_seconds
        self.timeout_seconds = timeout_seconds
        self.clock = clock
        self._keys: dict[str | None, dict[str, Any]] | None = None
        self._fetched_at: float | None = None  # last good fetch
        self._tried_at: float | None = None  # last attempt, good or not
        self._error: str | None = None
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def get(self, kid: str | None) -> dict[str, Any]:
        stale = self._fetched_at is None or self.clock() - self._fetched_at > self.max_age_seconds
        key = None if self._keys is None else _pick(self._keys, kid)
        if key is None or stale:
            await self._refresh()
            key = None if self._keys is None else _pick(self._keys, kid)
        if key is not None:
            return key
        if self._keys is None:
            raise Unauthenticated(f"cannot verify the token: the JWKS at {self.shown_url} "
                                  f"could not be fetched ({self._error})")
        if kid is None:
            raise Unauthenticated(f"token has no 'kid' header and the JWKS at "
                                  f"{self.shown_url} holds {len(self._keys)} keys")
        raise Unauthenticated(f"token signing key kid={kid!r} is not in the JWKS at "
                              f"{self.shown_url}")

    async def _refresh(self) -> None:
        tried = self._tried_at
        async with self._lock:
            if self._tried_at != tried:
                return  # another request refreshed while this one waited
            now = self.clock()
            if self._tried_at is not None and now - self._tried_at < self.min_refetch_seconds:
                return
            self._tried_at = now
            try:
                self._keys = _index(await self._fetch(), f"the document at {self.shown_url}")
                self._fetched_at = now
                self._error = None
            except (httpx.HTTPError, ValueError) as exc:
                self._error = str(exc) or type(exc).__name__
                log.warning("JWKS %s: fetch failed: %s", self.shown_url, self._error)

    async def _fetch(self) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False)
        response = await self._client.get(self.url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code} from {self.shown_url}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"the JWKS at {self.shown_url} is larger than {MAX_JWKS_BYTES} "
                             "bytes")
        return response.json()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
