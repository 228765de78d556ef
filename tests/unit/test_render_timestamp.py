"""``render.timestamp`` writes exactly what ``datetime.isoformat`` would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from codeq.core.render import timestamp

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), ZoneInfo("Europe/Paris"),
         ZoneInfo("America/St_Johns")]


def expected(value: float, tz: timezone | ZoneInfo) -> str:
    return datetime.fromtimestamp(value, tz).isoformat(timespec="milliseconds")


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
       st.sampled_from(ZONES))
def test_any_time_in_any_zone(value: float, tz: timezone | ZoneInfo) -> None:
    assert timestamp(value, tz) == expected(value, tz)


def test_rounding_edges_and_daylight_saving_changes() -> None:
    # 2026-03-29 01:00 UTC: Paris moves from +01:00 to +02:00; 2026-10-25 01:00 UTC: back.
    edges = [1_900_000_000.0, 1_900_000_000.9995, 1_900_000_000.9999996, 1_900_000_000.0004999,
             1_900_000_000.0005, 1_900_000_000.999999, 1_774_746_000.0 - 0.0004, 1_774_746_000.0,
             1_792_890_000.0 - 0.0001, 1_792_890_000.0005, 0.0, 0.0005, 1e-7]
    for value in edges:
        for tz in ZONES:
            assert timestamp(value, tz) == expected(value, tz), (value, tz)
    assert timestamp(None, UTC) is None


def test_a_time_shared_by_a_batch_is_written_once() -> None:
    timestamp.cache_clear()
    texts = {timestamp(1_900_000_000.25, UTC) for _ in range(100)}
    assert texts == {expected(1_900_000_000.25, UTC)}
    assert (timestamp.cache_info().misses, timestamp.cache_info().hits) == (1, 99)
