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
        profiles = {str(k): dict(v or {}) for k, v in (data.get("profiles") or {}).items()}
        return cls(current=str(data.get("currentProfile") or DEFAULT_PROFILE), profiles=profiles)

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
