"""The ``store`` fixture: one fresh store per test, for every registered storage backend."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

# The tests live in the package; let pytest explain their failed asserts as it does for tests/.
pytest.register_assert_rewrite("codeq.testing.contract", "codeq.testing.contract_delivery")

from codeq.core.config import load_settings
from codeq.core.storage import Storage
from codeq.plugins import open_storage, storage_backends
from codeq.testing.providers import PROVIDERS


@pytest.fixture(params=sorted(storage_backends()))
async def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Storage]:
    scheme: str = request.param
    provider = PROVIDERS.get(scheme)
    if provider is None:
        pytest.fail(f"storage backend {scheme!r} is registered but has no entry in "
                    "codeq.testing.providers.PROVIDERS, so the contract suite cannot open one; "
                    "add a provider that yields the URL of a fresh, empty store", pytrace=False)
    async with provider(tmp_path) as url:
        opened = open_storage(url, load_settings(environ={}))
        await opened.open()
        try:
            yield opened
        finally:
            await opened.close()
