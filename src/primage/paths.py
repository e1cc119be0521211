"""Where the repository's pieces live. Everything else asks here, never hard-codes a path."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from .errors import PrimageError

_MARKERS = ("pyproject.toml", "tosca", "ansible")


def _is_root(path: Path) -> bool:
    return all((path / marker).exists() for marker in _MARKERS)


@cache
def root() -> Path:
    """The repository checkout: $PRIMAGE_ROOT, else the checkout this package runs from, else cwd's."""
    override = os.environ.get("PRIMAGE_ROOT")
    if override:
        path = Path(override).resolve()
        if not _is_root(path):
            raise PrimageError(
                f"PRIMAGE_ROOT does not point at a primage-platform checkout (expected {', '.join(_MARKERS)} in it)",
                file=path,
            )
        return path
    candidates = [Path(__file__).resolve().parents[2], *Path.cwd().resolve().parents, Path.cwd().resolve()]
    for candidate in candidates:
        if _is_root(candidate):
            return candidate
    raise PrimageError("not inside a primage-platform checkout; run from the repository or set PRIMAGE_ROOT")


def tosca_dir() -> Path:
    return root() / "tosca"


def radl_dir() -> Path:
    return root() / "radl"


def ansible_dir() -> Path:
    return root() / "ansible"


def containers_dir() -> Path:
    return root() / "containers"


def cache_dir() -> Path:
    """Build caches shared by every checkout of the user: Go module and build caches, the
    Kubernetes binaries, base image work. $PRIMAGE_CACHE, else $XDG_CACHE_HOME/primage
    (~/.cache/primage): never inside the clone, so a fresh clone on the same machine is fast."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(os.environ.get("PRIMAGE_CACHE") or user_cache / "primage")
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_dir() -> Path:
    """State that belongs to one checkout (its collection link, Molecule instances, IM
    databases, logs): a folder of the cache named after the checkout's path, so that two
    clones on one machine never step on each other."""
    path = cache_dir() / "checkouts" / f"{root().name}-{checkout_id()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkout_id() -> str:
    """A short name of this checkout, the same on every run: it keeps the containers, networks
    and folders of two clones on one machine apart (Molecule instances carry it too)."""
    return hashlib.sha256(str(root()).encode()).hexdigest()[:10]


def user_state_dir() -> Path:
    """State of the user's own work, whatever checkout runs `primage` (which IM each
    infrastructure lives at): $PRIMAGE_STATE_DIR, else $XDG_STATE_HOME/primage
    (~/.local/state/primage). Private to the user (mode 0700); it holds no secrets."""
    user_state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    path = Path(os.environ.get("PRIMAGE_STATE_DIR") or user_state / "primage")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def relative(path: Path) -> str:
    """A path as the user should read it: relative to the checkout when inside it."""
    try:
        return str(Path(path).resolve().relative_to(root()))
    except ValueError:
        return str(path)


class RepositoryFile:
    """Mixin for objects read from a file: its name and the path users should read."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def display(self) -> str:
        return relative(self.path)
