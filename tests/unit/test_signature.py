"""``verify_signature``: HMAC-SHA256 over "<timestamp>." + raw body, fresh timestamps only."""

from __future__ import annotations

import hashlib
import hmac

from codeq import verify_signature

SECRET = "whsec-test"
BODY = b'{"taskId": "t-1", "status": "COMPLETED"}'
NOW = 1_800_000_000


def signature(timestamp: int | str, body: bytes = BODY, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_correct_signature_verifies() -> None:
    assert verify_signature(SECRET, str(NOW), BODY, signature(NOW), now=NOW)
    assert verify_signature(SECRET.encode(), NOW, BODY.decode(), signature(NOW), now=NOW + 299)


def test_wrong_secret_body_or_timestamp_is_refused() -> None:
    good = signature(NOW)
    assert not verify_signature("other", NOW, BODY, good, now=NOW)
    assert not verify_signature(SECRET, NOW, BODY + b" ", good, now=NOW)
    assert not verify_signature(SECRET, NOW + 1, BODY, good, now=NOW)
    assert not verify_signature(SECRET, NOW, BODY, good[:-1] + "0" if good[-1] != "0"
                                else good[:-1] + "1", now=NOW)
    assert not verify_signature(SECRET, "yesterday", BODY, good, now=NOW)
    assert not verify_signature(SECRET, NOW, BODY, "", now=NOW)


def test_stale_or_future_timestamps_are_refused() -> None:
    old = NOW - 301
    assert not verify_signature(SECRET, old, BODY, signature(old), now=NOW)
    future = NOW + 301
    assert not verify_signature(SECRET, future, BODY, signature(future), now=NOW)
    assert verify_signature(SECRET, old, BODY, signature(old), tolerance_seconds=600, now=NOW)


def test_malformed_headers_are_refused_not_raised_on() -> None:
    """Headers come from whoever calls the receiver: a 400-digit timestamp raised
    OverflowError, a missing signature AttributeError, a lone surrogate UnicodeEncodeError."""
    good = signature(NOW)
    assert not verify_signature(SECRET, "9" * 400, BODY, good, now=float(NOW))
    assert not verify_signature(SECRET, NOW, BODY, None, now=NOW)  # type: ignore[arg-type]
    assert not verify_signature(SECRET, NOW, BODY, "\udcff", now=NOW)
    assert not verify_signature(SECRET, NOW, BODY, good + "\u00e9", now=NOW)
    # int() reads these as NOW, but they are not what the server signs.
    arabic = str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert not verify_signature(SECRET, arabic, BODY, signature(arabic), now=NOW)
    assert not verify_signature(SECRET, "1_800_000_000", BODY, signature("1_800_000_000"),
                                now=NOW)
    assert verify_signature(SECRET, f" {NOW} ", BODY, f" {good.upper()} ", now=NOW)
