"""Where the repository's pieces live. Everything else asks here, never hard-codes a path."""

from __future__ import annotations

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
    """Local, untracked state: base image root filesystems, IM databases, rendered templates."""
    path = Path(os.environ.get("PRIMAGE_CACHE", root() / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
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
