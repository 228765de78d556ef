"""Profiles in ``~/.codeq/config.yaml`` (mode 0600): server URL, tokens, login templates.

    currentProfile: default
    profiles:
      default:
        baseUrl: http://localhost:8080
        producerToken: eyJ...
        workerToken: eyJ...
        admin: false
        dataDir: /home/me/.local/share/codeq
        login: {...}          # see codeq.cli.login
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PROFILE = "default"
FIELDS = ("baseUrl", "producerToken", "workerToken", "admin", "dataDir", "login")


class ProfileError(Exception):
    """The config file cannot be read or is malformed."""


#: Profile fields holding text, and the one holding a yes/no.
TEXT_FIELDS = ("baseUrl", "producerToken", "workerToken", "dataDir")


def _checked(path: Path, name: str, profile: Any) -> dict[str, Any]:
    """One profile, with each known field of the type the CLI uses: a token YAML read as
    a number (``0123`` is 83) or an ``admin: 'no'`` (a true string) would be used changed."""
    if profile is None:
        return {}
    if not isinstance(profile, dict):
        raise ProfileError(f"{path}: profile {name} must map fields to values")
    for key in TEXT_FIELDS:
        if profile.get(key) is not None and not isinstance(profile[key], str):
            raise ProfileError(f"{path}: {key} of profile {name} must be text (quote it), "
                               f"not {profile[key]!r}")
    if profile.get("admin") is not None and not isinstance(profile["admin"], bool):
        raise ProfileError(f"{path}: admin of profile {name} must be true or false, not "
                           f"{profile['admin']!r}")
    login = profile.get("login")
    if login is not None:
        steps = [login.get(step) for step in ("request", "exchange")] if isinstance(
            login, dict) else [None]
        if not isinstance(login, dict) or not all(step is None or _step_ok(step)
                                                  for step in steps):
            raise ProfileError(f"{path}: login of profile {name} must map request (and "
                               "optionally exchange) to {url: text, method: text, headers: "
                               "{name: value}, body: text, tokenPath: text}; fix or remove "
                               "it in the file")
    return dict(profile)


def _step_ok(step: Any) -> bool:
    """A login step as ``codeq.cli.login.Step.from_profile`` reads it."""
    return (isinstance(step, dict) and isinstance(step.get("url"), str)
            and isinstance(step.get("headers") or {}, dict)
            and all(isinstance(step.get(k), str) for k in ("method", "body", "tokenPath")
                    if step.get(k) is not None))


def config_path() -> Path:
    return Path.home() / ".codeq" / "config.yaml"


@dataclass
class ConfigFile:
    """The whole file; ``profiles`` maps a name to its settings (camelCase keys)."""

    current: str = DEFAULT_PROFILE
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> ConfigFile:
        path = config_path()
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            return cls()
        except (OSError, yaml.YAMLError) as exc:
            raise ProfileError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
            raise ProfileError(f"{path} must map 'profiles' to named profiles")
        profiles = {str(k): _checked(path, str(k), v) for k, v in
                    (data.get("profiles") or {}).items()}
        current = data.get("currentProfile") or DEFAULT_PROFILE
        if not isinstance(current, str):
            raise ProfileError(f"{path}: currentProfile must be a profile name, not "
                               f"{current!r}")
        return cls(current=current, profiles=profiles)

    def profile(self, name: str) -> dict[str, Any]:
        return self.profiles.setdefault(name, {})

    def save(self) -> Path:
        """Write atomically, readable by the owner only (it holds tokens)."""
        path = config_path()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = yaml.safe_dump({"currentProfile": self.current, "profiles": self.profiles},
                              sort_keys=False, default_flow_style=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-")  # created 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        os.chmod(path, 0o600)
        return path
