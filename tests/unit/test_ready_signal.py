"""``ReadySignal``: one wake-up per notification, passed on when it is not used."""

from __future__ import annotations

import asyncio

import pytest

from codeq.core.wakeup import ReadySignal


async def test_a_notification_wakes_the_oldest_matching_waiter_only() -> None:
    signal = ReadySignal()
    with signal.listen(["A"]) as first, signal.listen(["B"]) as other, \
            signal.listen(["A", "B"]) as second:
        signal.notify("A")
        assert first.future.done()
        assert not other.future.done() and not second.future.done()
        signal.notify("A")
        assert second.future.done() and not other.future.done()
        signal.notify("A")  # nobody is left waiting for A
        assert not other.future.done()
        signal.notify_all()
        assert other.future.done()


def _cancelled(signal_block: object) -> None:
    """Leave a ``listen`` block the way a cancelled claim does."""
    error = asyncio.CancelledError()
    assert signal_block.__exit__(type(error), error, None) is False  # type: ignore[attr-defined]


@pytest.mark.parametrize("commands", [["A"], None], ids=["one command", "every command"])
async def test_a_wake_up_whose_claim_is_cancelled_goes_to_the_next_waiter(
        commands: list[str] | None) -> None:
    signal = ReadySignal()
    block = signal.listen(commands)
    woken = block.__enter__()
    with signal.listen(["A"]) as later:
        signal.notify("A")
        assert woken.future.done() and not later.future.done()
        _cancelled(block)
        assert later.future.done()


async def test_a_used_wake_up_or_an_unwoken_waiter_leaving_wakes_nobody() -> None:
    signal = ReadySignal()
    used, idle = signal.listen(["A"]), signal.listen(["A"])
    used.__enter__()
    idle.__enter__()
    with signal.listen(["A"]) as later:
        signal.notify("A")
        used.__exit__(None, None, None)  # the claim went on to claim: the wake-up was used
        _cancelled(idle)  # never woken
        assert not later.future.done()
