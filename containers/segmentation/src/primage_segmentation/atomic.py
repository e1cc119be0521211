"""Atomic file writes: a temporary name in the same folder, flushed to disk, then renamed.

A reader (or the skip check of a later run) sees either the whole file under its final name or
nothing. A task killed with SIGKILL may leave a temporary file, always named `.NAME.tmp-*`,
which the next run over that folder removes. SIGTERM removes it on the way out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TEMP_MARK = ".tmp-"
# Temporary files being written by this process, removed if it is stopped (see cli).
_open_temporaries: set[Path] = set()


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and TEMP_MARK in path.name


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    _open_temporaries.add(temporary)
    try:
        with open(temporary, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        _open_temporaries.discard(temporary)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: some FUSE file systems refuse it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def remove_stale_temporaries(folder: Path) -> int:
    """Remove temporary files a killed run left in `folder`; returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if entry.is_file() and is_temporary(entry):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def remove_open_temporaries() -> None:
    for temporary in list(_open_temporaries):
        with contextlib.suppress(OSError):
            temporary.unlink()
        _open_temporaries.discard(temporary)
