"""Access to a Onedata space that a cluster mounts: provider and token from a private config file.

    # ~/.config/primage/onedata.yaml, mode 0600
    provider_host: plg-cyfronet-01.datahub.egi.eu
    token: MDAxY2xvY2F0aW9u...
    # optional, per space (the top-level values are the defaults):
    spaces:
      MedicalImaging: {provider_host: ..., token: ...}

The token never goes on a command line; a file that others may read is refused, as are unknown
keys. What it gives becomes the workload's pod-mode values (the pods mount the space) or tells
the nodes' mount in node mode; on the local backend a Onedata space is a folder mounted with
oneclient, given with --space.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .. import yamlio
from ..errors import PrimageError

KEYS = {"provider_host", "token", "spaces"}
SPACE_KEYS = {"provider_host", "token"}


def default_config() -> Path:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "primage" / "onedata.yaml"


@dataclass(frozen=True)
class Access:
    space: str
    provider_host: str
    token: str = field(repr=False)  # never shown

    def workload_values(self, application: str) -> tuple[dict, dict]:
        """(values, secrets) of the application role for pods that mount the space themselves."""
        prefix = application
        values = {f"{prefix}_onedata_mode": "pod", f"{prefix}_onedata_provider_host": self.provider_host}
        return values, {f"{prefix}_onedata_token": self.token}


def check_private(path: Path) -> None:
    """A file holding a secret: a regular file of ours that no one else may read or write."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise PrimageError(
            "no Onedata config file: write provider_host and token there, mode 0600 "
            "(install -m 600 /dev/null FILE, then edit it)",
            file=path,
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise PrimageError("the Onedata config is not a regular file", file=path)
    if info.st_mode & 0o077:
        raise PrimageError(
            f"the Onedata config holds a token and others may read or change it "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it first",
            file=path,
        )
    if info.st_uid != os.geteuid():
        raise PrimageError("the Onedata config belongs to another user", file=path)


def load(space: str, path: Path | None = None) -> Access:
    path = path or default_config()
    check_private(path)
    data, lines = yamlio.load_file(path)
    if not isinstance(data, dict):
        raise PrimageError("expected a mapping with provider_host and token", file=path)
    for key in data:
        if key not in KEYS:
            raise PrimageError(
                f"unknown key '{key}' (expected {', '.join(sorted(KEYS))})", file=path, line=lines.line_of(key)
            )
    spaces = data.get("spaces") or {}
    if not isinstance(spaces, dict):
        raise PrimageError("spaces: expected a mapping of space names", file=path, line=lines.line_of("spaces"))
    own = spaces.get(space) or {}
    for key in own:
        if key not in SPACE_KEYS:
            raise PrimageError(
                f"unknown key '{key}' (expected {', '.join(sorted(SPACE_KEYS))})",
                file=path,
                line=lines.line_of("spaces", space, key),
            )
    merged = {**{k: data[k] for k in SPACE_KEYS if k in data}, **own}
    for key in sorted(SPACE_KEYS):
        value = merged.get(key)
        if not isinstance(value, str) or not value.strip():
            raise PrimageError(
                f"no {key} for the space {space} (a non-empty string, top-level or under spaces.{space})",
                file=path,
                field=key,
            )
    return Access(space, merged["provider_host"].strip(), merged["token"].strip())
