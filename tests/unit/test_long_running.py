"""The collector settings of ``codeq serve`` and ``codeq worker start``."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from codeq.long_running import YOUNG_THRESHOLD, settle_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    kept = [[] for _ in range(100)]  # containers alive at the time: frozen with the rest
    _, middle, old = gc.get_threshold()
    settle_collector()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
