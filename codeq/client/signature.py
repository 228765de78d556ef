"""Verifying the signature codeq puts on webhooks (``X-CodeQ-Signature``)."""

from __future__ import annotations

import hmac
import time

from codeq.core.signing import sign

__all__ = ["sign", "verify_signature"]


def verify_signature(secret: str | bytes, timestamp: str | int, body: bytes | str,
                     signature: str, tolerance_seconds: float = 300, *,
                     now: float | None = None) -> bool:
    """True when ``signature`` is the server's signature of ``body`` at ``timestamp``.

    Pass the raw request body (bytes as received, before any JSON parsing) and
    the ``X-CodeQ-Timestamp`` / ``X-CodeQ-Signature`` headers. Timestamps more
    than ``tolerance_seconds`` away from now are refused, so a captured
    request cannot be replayed later. The comparison runs in constant time.
    """
    try:
        sent = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_seconds:
        return False
    expected = sign(secret, str(timestamp).strip(), body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
