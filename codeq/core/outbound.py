"""Where codeq may send webhooks: http(s) only, and outside dev mode no private networks.

Checked when a URL is handed to us (a task's ``webhook``, a subscription's
``callbackUrl``) and again right before each send, because a name that
resolved to a public address at registration may resolve to
``127.0.0.1`` later (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from codeq.core.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def forbidden_kind(address: Address) -> str | None:
    """Why codeq will not call ``address`` by default, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_kind(address.ipv4_mapped)
    for kind, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("unspecified", address.is_unspecified), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("reserved", address.is_reserved)):
        if flag:
            return kind
    return None


class OutboundPolicy:
    """``check(url)`` raises ``InvalidInput`` naming the problem, or returns."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def check(self, url: str, *, field: str = "url") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"{field}: must be an http(s) URL with a host")
        if self.allow_private:
            return
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{field}: host {host!r} does not resolve ({exc})") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            kind = forbidden_kind(address)
            if kind is not None:
                raise InvalidInput(
                    f"{field}: {host} resolves to the {kind} address {address}; outbound "
                    "webhooks may not target private networks (set "
                    "webhookAllowPrivateNetworks: true to allow it)")
