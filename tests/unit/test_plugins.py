"""The plugin manager, the hook documentation and the worked example of docs/plugins.md."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeq import hookspecs
from codeq.core.errors import ConfigError
from codeq.plugins import backoff_policies, manager, plugin_info, storage_backends

DOC = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("register_"))
BUILTINS = {"codeq_backoff", "codeq_memory", "codeq_sqlite", "codeq_jwt", "codeq_static_tokens"}


def test_every_hook_has_a_section_in_the_docs() -> None:
    missing = [hook for hook in HOOKS if f"### {hook}" not in DOC]
    assert not missing, f"docs/plugins.md lacks sections for {missing}"


def test_every_hook_is_documented_in_hookspecs() -> None:
    for hook in HOOKS:
        assert (getattr(hookspecs, hook).__doc__ or "").strip(), hook


def test_builtins_load_through_the_entry_point_group() -> None:
    loaded = {info.name: info for info in plugin_info()}
    assert BUILTINS <= set(loaded)
    assert "register_backoff_policies" in loaded["codeq_backoff"].hooks
    assert loaded["codeq_backoff"].source.endswith("codeq_backoff/__init__.py")
    assert {"memory", "sqlite"} <= set(storage_backends())


@pytest.fixture
def example_plugin() -> Iterator[types.ModuleType]:
    code = re.search(r"```python\n(.*?)```", DOC, re.DOTALL)
    assert code, "docs/plugins.md has no python example"
    module = types.ModuleType("codeq_fibonacci")
    # S102 below: the code run is the example in our own docs/plugins.md
    exec(compile(code.group(1), "docs/plugins.md", "exec"), module.__dict__)  # noqa: S102
    manager().register(module, name="codeq_fibonacci")
    yield module
    manager().unregister(module)


def test_the_documented_example_plugin_works(example_plugin: types.ModuleType) -> None:
    policies = backoff_policies()
    assert "fibonacci" in policies.names
    from codeq.core.domain import BackoffSpec

    delays = [policies.delay(BackoffSpec("fibonacci", 2, 20), n) for n in range(1, 8)]
    assert delays == [2, 2, 4, 6, 10, 16, 20]
    assert "codeq_fibonacci" in {info.name for info in plugin_info()}


def test_a_name_registered_twice_names_both_plugins() -> None:
    impostor = types.ModuleType("codeq_impostor")
    exec("from codeq import hookimpl\n"  # noqa: S102 -- a literal plugin
         "@hookimpl\n"
         "def register_backoff_policies(register):\n"
         "    register('fixed', lambda n, b, m, r: 1)\n", impostor.__dict__)
    manager().register(impostor, name="codeq_impostor")
    try:
        with pytest.raises(ConfigError, match="codeq_backoff.*codeq_impostor"):
            backoff_policies()
    finally:
        manager().unregister(impostor)
