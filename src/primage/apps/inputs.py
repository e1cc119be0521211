"""The inputs of an HTC application in a space folder, and where the task contract puts their results.

`--files` is a shell pattern relative to the space (`**` reaches into sub-folders). A matching
file is an input; a matching folder is one when it holds files, no sub-folder and no NIfTI
volume: a DICOM series, one slice per file. The task contract puts the results of input `inputs/case-001.nii.gz` in
`<output>/inputs/case-001/` (the .nii/.nii.gz suffix dropped) and writes `_SUCCESS` there last.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path, PurePosixPath

from ..errors import PrimageError, UsageError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
MARKER = "_SUCCESS"
GLOB_CHARACTERS = set("*?[")


def check_relative(value: str, option: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise UsageError(f"{option} '{value}' must be a path relative to the space folder, without '..'")
    return str(path)


def check_space(space: Path) -> Path:
    """The space folder, absolute; missing, not a folder or unreadable is an error naming it."""
    try:
        space.stat()
    except PermissionError:
        raise PrimageError(
            "the space folder cannot be reached (permission denied on a folder above it)", file=space
        ) from None
    except OSError:
        pass  # missing: said below
    if not space.exists():
        raise PrimageError(
            "the space folder does not exist (give --space a folder, e.g. one mounted with oneclient)", file=space
        )
    if not space.is_dir():
        raise PrimageError("the space is not a folder", file=space)
    if not os.access(space, os.R_OK | os.X_OK):
        raise PrimageError("the space folder cannot be read (permission denied)", file=space)
    return space.resolve()


def is_literal(pattern: str) -> bool:
    return not GLOB_CHARACTERS & set(pattern)


def find(space: Path, pattern: str, output: str) -> list[str]:
    """Inputs matching `pattern` in `space`, sorted, relative to it; never under the output folder."""
    check_relative(pattern, "--files")
    try:
        matches = glob.glob(pattern, root_dir=space, recursive=True)
    except OSError as error:
        raise PrimageError(f"cannot list the space folder ({error.strerror or error})", file=space) from None
    root = str(space)

    def is_input(relative: str) -> bool:
        path = os.path.join(root, relative)
        return os.path.isfile(path) or (os.path.isdir(path) and _series(Path(path)))

    found = _select(matches, output, is_input)
    if not found:
        raise PrimageError(f"no file matches --files '{pattern}' in the space folder{_hint(space)}", file=space)
    return found


def _select(matches, output: str, is_input) -> list[str]:
    """The rule of both listings: matches outside the output folder, not hidden, that are inputs."""
    output_prefix = output.rstrip("/") + "/"
    found = []
    # Plain string operations: ten thousand files are listed in milliseconds.
    for relative in matches:
        relative = relative.rstrip("/")
        if relative == output or relative.startswith(output_prefix) or _hidden(relative):
            continue
        if is_input(relative):
            found.append(relative)
    return sorted(found)


def _hidden(relative: str) -> bool:
    return relative.startswith(".") or "/." in relative


def _series(folder: Path) -> bool:
    """A folder of files, no sub-folder and no NIfTI volume among them: a DICOM series."""
    try:
        entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    except OSError:
        return False
    volumes = [e for e in entries if e.name.lower().endswith(NIFTI_SUFFIXES)]
    return bool(entries) and not volumes and all(e.is_file() for e in entries)


def _hint(space: Path) -> str:
    try:
        names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(space) if not e.name.startswith("."))
    except OSError:
        return ""
    if not names:
        return " (it is empty)"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" (it holds {shown}; the pattern is relative to it, e.g. --files 'inputs/*')"


def result_folder(output: str, input_path: str) -> str:
    """Where the task contract puts the results of `input_path`, relative to the space."""
    folder, _slash, name = input_path.rpartition("/")
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return "/".join(part for part in (output.rstrip("/"), folder, name) if part)


def newest_mtime(path: Path) -> float:
    if path.is_dir():
        return max((e.stat().st_mtime for e in os.scandir(path) if e.is_file()), default=0.0)
    return path.stat().st_mtime


def has_result(space: Path, input_path: str, result: str) -> bool:
    """Complete results newer than their input: the marker is written last, after every file."""
    marker = space / result / MARKER
    try:
        return marker.stat().st_mtime >= newest_mtime(space / input_path)
    except OSError:
        return False


def remove_incomplete(space: Path, result: str) -> list[str]:
    """Remove what an interrupted task left in its output folder (no marker: nothing there is a
    result), then the folders it leaves empty; never anything of a complete result."""
    folder = space / result
    if not folder.is_dir() or (folder / MARKER).exists():
        return []
    removed = []
    for entry in os.scandir(folder):
        if entry.is_file() or entry.is_symlink():
            os.unlink(entry.path)
            removed.append(entry.name)
    prune_empty(folder, space)
    return removed


def prune_empty(folder: Path, stop: Path) -> None:
    """Remove `folder` and its parents while they are empty, up to (and not including) `stop`."""
    current = folder
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent
