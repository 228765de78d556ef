"""Webhook signatures: ``X-CodeQ-Signature`` = hex HMAC-SHA256(secret, "<timestamp>." + body).

The server signs with ``signature_headers``; receivers verify with
``codeq.verify_signature`` (``codeq.client.signature``), which uses ``sign``.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-CodeQ-Timestamp"
SIGNATURE_HEADER = "X-CodeQ-Signature"


def sign(secret: str | bytes, timestamp: str | int, body: bytes | str) -> str:
    """Lowercase hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(key, f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def signature_headers(secret: str | None, body: bytes, now: float) -> dict[str, str]:
    """The headers of a webhook POST sent at ``now``: none to add when there is no secret."""
    if not secret:
        return {}
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
