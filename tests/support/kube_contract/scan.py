"""Look for the values of the stored Secrets where they must never be: process command lines and
world-readable files. Used by the Molecule scenarios inside their instances.

The values come from the server's root-only state file, so the scanner's own command line holds
none of them; findings name the place, never the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from pathlib import Path

SKIP_DIRS = ("/proc", "/sys", "/dev")
MAX_FILE_BYTES = 5 * 1024 * 1024
MIN_VALUE_LENGTH = 8  # shorter values would match by chance


def secret_values(state_file: str | os.PathLike) -> set[str]:
    """Every Secret value of the state (decoded and base64), and registry passwords inside them."""
    state = json.loads(Path(state_file).read_text(encoding="utf-8"))
    values: set[str] = set()
    for obj in state.get("objects", []):
        if obj.get("kind") != "Secret":
            continue
        for encoded in (obj.get("data") or {}).values():
            values.add(encoded)
            try:
                decoded = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, ValueError):
                continue
            values.add(decoded)
            try:
                auths = json.loads(decoded).get("auths", {})
            except (ValueError, AttributeError):
                continue
            for entry in auths.values():
                values.update(v for k, v in entry.items() if k in ("password", "auth"))
    return {v for v in values if len(v) >= MIN_VALUE_LENGTH}


def _cmdlines() -> list[tuple[str, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            found.append((entry.name, raw.replace(b"\0", b" ").decode("utf-8", "replace")))
    return found


def _world_readable_files(roots: list[str]):
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in SKIP_DIRS]
            for name in files:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode) and info.st_mode & stat.S_IROTH and info.st_size <= MAX_FILE_BYTES:
                    yield path


def scan(state_file: str | os.PathLike, roots: list[str] | None = None) -> dict:
    values = secret_values(state_file)
    encoded = [v.encode() for v in values]
    processes = [
        {"pid": pid, "command": cmd.split(" ")[0]} for pid, cmd in _cmdlines() if any(v in cmd for v in values)
    ]
    files = []
    for path in _world_readable_files(roots or ["/"]):
        try:
            content = Path(path).read_bytes()
        except OSError:
            continue
        if any(v in content for v in encoded):
            files.append(path)
    return {"values_checked": len(values), "processes": processes, "world_readable_files": files}
