"""Verifying the signature codeq puts on webhooks (``X-CodeQ-Signature``)."""

from __future__ import annotations

import hmac
import time

from codeq.core.signing import sign

__all__ = ["sign", "verify_signature"]

#: Digits of a Unix time in seconds, with room to spare (the server sends 10).
MAX_TIMESTAMP_DIGITS = 12


def verify_signature(secret: str | bytes, timestamp: str | int, body: bytes | str,
                     signature: str, tolerance_seconds: float = 300, *,
                     now: float | None = None) -> bool:
    """True when ``signature`` is the server's signature of ``body`` at ``timestamp``.

    Pass the raw request body (bytes as received, before any JSON parsing) and
    the ``X-CodeQ-Timestamp`` / ``X-CodeQ-Signature`` headers. Timestamps more
    than ``tolerance_seconds`` away from now are refused, so a captured
    request cannot be replayed later. The comparison runs in constant time.
    """
    # Headers are whatever a client sent: anything but a plain count of seconds and a hex
    # digest is refused, not raised on (a missing header, a 400-digit timestamp that no
    # float can hold, a non-ASCII signature).
    text = str(timestamp).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_TIMESTAMP_DIGITS):
        return False
    if not isinstance(signature, str) or not signature.isascii():
        return False
    current = time.time() if now is None else now
    if abs(current - int(text)) > tolerance_seconds:
        return False
    expected = sign(secret, text, body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
