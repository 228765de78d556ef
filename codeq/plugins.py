"""The plugin manager: built-ins and third-party plugins, loaded once, the same way.

Built-in plugins (``plugins/codeq_*``) are ordinary entry points of the
``codeq`` group. ``CODEQ_DISABLE_PLUGINS=a,b`` blocks plugins by name before
they load; ``CODEQ_TRACE_PLUGINS=1`` logs every hook call.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import pluggy

from codeq import hookspecs
from codeq.core.artifacts import ArtifactStore
from codeq.core.auth import TokenValidator
from codeq.core.backoff import BackoffPolicies
from codeq.core.config import Settings
from codeq.core.errors import ConfigError
from codeq.core.storage import Storage
from codeq.hookspecs import StorageFactory

GROUP = "codeq"
log = logging.getLogger("codeq.plugins")


@cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in os.environ.get("CODEQ_DISABLE_PLUGINS", "").split(","):
        if name.strip():
            pm.set_blocked(name.strip())
    pm.load_setuptools_entrypoints(GROUP)
    pm.check_pending()
    if os.environ.get("CODEQ_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda text: log.info("hook: %s", text.rstrip()))
        pm.enable_tracing()
    return pm


def _collect(hook: str, **kwargs: Any) -> dict[str, Any]:
    """Run a ``register_*`` hook plugin by plugin; a name offered twice stops start-up."""
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for impl in getattr(manager().hook, hook).get_hookimpls():

        def register(name: str, item: Any, _plugin: str = impl.plugin_name) -> None:
            if name in found:
                raise ConfigError(hook, f"{name!r} is registered by both plugin "
                                        f"{owner[name]!r} and plugin {_plugin!r}")
            found[name] = item
            owner[name] = _plugin

        impl.function(register=register, **kwargs)
    return found


def storage_backends() -> dict[str, StorageFactory]:
    """Storage factories by URL scheme."""
    return _collect("register_storage_backends")


def backoff_policies() -> BackoffPolicies:
    return BackoffPolicies(_collect("register_backoff_policies"))


def token_validators(settings: Settings) -> list[TokenValidator]:
    """Validators in the order their plugins registered them."""
    return list(_collect("register_token_validators", settings=settings).values())


def open_storage(url: str, settings: Settings) -> Storage:
    """An unopened store for ``url``, by its scheme."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    backends = storage_backends()
    if scheme not in backends:
        raise ConfigError("storage", f"no storage backend for {url.split('@')[-1]!r}; "
                                     f"known schemes: {', '.join(sorted(backends))}")
    return backends[scheme](url, settings)


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """The artifact store named by ``artifactStore``."""
    stores = _collect("register_artifact_stores")
    if settings.artifact_store not in stores:
        raise ConfigError("artifactStore", f"no artifact store named {settings.artifact_store!r}; "
                                           f"known: {', '.join(sorted(stores)) or 'none'}")
    store: ArtifactStore = stores[settings.artifact_store](settings)
    return store


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str | None
    source: str
    hooks: tuple[str, ...]


def plugin_info() -> list[PluginInfo]:
    """What is loaded and from where, for ``codeq plugins``."""
    pm = manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        out.append(PluginInfo(name=name, version=dist.version if dist else None,
                              source=getattr(plugin, "__file__", None) or repr(plugin),
                              hooks=hooks))
    return out
