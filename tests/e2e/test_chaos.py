"""The short chaos run (``benchmarks/chaos.py``): crashes of workers, servers and the store
lose no acknowledged task and no result callback."""

from __future__ import annotations

import pytest

from benchmarks.chaos import Plan, run


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_nothing_is_lost(store: str) -> None:
    report = run(Plan(store=store, tasks=300, duration=10, freeze_seconds=3), settle=60)
    print(report.table())
    assert report.ok, report.table()
    assert report.acknowledged == 300
    assert len(report.events) >= (3 if store == "sqlite" else 6), report.events
    if store == "redis":
        assert set(report.statuses_frozen) == {503}, "a frozen store answers 503"
