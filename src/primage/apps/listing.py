"""The inputs of a space that is not a folder of this machine: a Onedata space only the cluster's pods mount.

A pod of the application's Onedata variant mounts the space and runs `script()` through the
variant's entrypoint (as the application's user): GNU find, run from the mount point, prints the
entries the pattern can reach (its fixed leading folders and what is below them, no deeper than the pattern goes
unless it holds `**`) and the `_SUCCESS` markers of the output folder, one line each with the
type and modification time. `parse` reads that back and `Listing` applies the rules of
primage.apps.inputs to it: the same matches as `glob` on a folder (`**` included), hidden names
and the output folder left out, a folder of slices a DICOM series, a result complete when its
marker is newer than its input. A unit test runs the script on folders here and checks that
both listings give the same inputs.

Lines: `@@primage-listing <start>` before the entries under each start folder, then
`<type> <mtime> <path>` (type f file, d folder, l a broken link, others as find's %y), `?` for a
name holding a control character (refused: it would split a line), and `@@primage-listing-end`.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import PrimageError
from . import inputs

BEGIN = "@@primage-listing"
END = "@@primage-listing-end"

# $1: the mount point; then pairs of (start folder, maxdepth or "-"); then "--markers" and the
# output folder. A start that does not exist lists nothing (an output folder before the first run).
_SCRIPT = r"""
cd -- "$1" || exit 3
shift
while [ "$#" -gt 0 ] && [ "$1" != --markers ]; do
  start=$1 depth=$2
  shift 2
  echo "@@primage-listing $start"
  [ -e "$start" ] || continue
  if [ "$depth" = - ]; then
    find -L "$start" \( -name '*[[:cntrl:]]*' -printf '?\n' -prune \) -o -printf '%y %T@ %p\n' || exit 4
  else
    find -L "$start" -maxdepth "$depth" \( -name '*[[:cntrl:]]*' -printf '?\n' -prune \) \
      -o -printf '%y %T@ %p\n' || exit 4
  fi
done
if [ "${1:-}" = --markers ]; then
  echo "@@primage-listing $2"
  if [ -e "$2" ]; then find -L "$2" -name _SUCCESS -printf '%y %T@ %p\n' || exit 4; fi
fi
echo "@@primage-listing-end"
"""


def script() -> str:
    return _SCRIPT.strip() + "\n"


def plan(pattern: str, output: str) -> list[str]:
    """The script's arguments after the mount point: where the pattern reaches, then the markers."""
    inputs.check_relative(pattern, "--files")
    parts = PurePosixPath(pattern).parts
    fixed = 0
    while fixed < len(parts) - 1 and not inputs.GLOB_CHARACTERS & set(parts[fixed]):
        fixed += 1
    start = "/".join(parts[:fixed]) or "."
    rest = parts[fixed:]
    # One level more than the pattern: a matching folder's own entries say whether it is a series.
    depth = "-" if "**" in rest else str(len(rest) + 1)
    top = [".", "1"] if start != "." else []  # the space's top level, for the message of no match
    return [*top, start, depth, "--markers", output.rstrip("/")]


@dataclass
class Listing:
    """What a pod saw of the space: path (relative to the space) -> (type, modification time)."""

    where: str  # the space as messages name it
    entries: dict[str, tuple[str, float]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)

    def add(self, path: str, kind: str, mtime: float) -> None:
        path = path.removeprefix("./")
        if path in self.entries or path in (".", ""):
            return
        self.entries[path] = (kind, mtime)
        parent = path.rpartition("/")[0]
        self.children.setdefault(parent, []).append(path)

    def find(self, pattern: str, output: str) -> list[str]:
        """The inputs.find of this listing: the same rule, the same order, the same errors."""
        parts = PurePosixPath(inputs.check_relative(pattern, "--files")).parts
        matches = [path for path in self.entries if _matches(parts, path.split("/"))]
        found = inputs._select(matches, output, self._is_input)
        if not found:
            raise PrimageError(f"no file matches --files '{pattern}' in {self.where}{self._hint()}")
        return found

    def _is_input(self, path: str) -> bool:
        kind = self.entries.get(path, ("",))[0]
        if kind == "f":
            return True
        if kind != "d":
            return False
        entries = [c for c in self.children.get(path, []) if not c.rpartition("/")[2].startswith(".")]
        volumes = [c for c in entries if c.lower().endswith(inputs.NIFTI_SUFFIXES)]
        return bool(entries) and not volumes and all(self.entries[c][0] == "f" for c in entries)

    def newest_mtime(self, path: str) -> float:
        kind, mtime = self.entries.get(path, ("", 0.0))
        if kind == "d":
            return max(
                (self.entries[c][1] for c in self.children.get(path, []) if self.entries[c][0] == "f"), default=0.0
            )
        return mtime

    def has_result(self, input_path: str, result: str) -> bool:
        marker = self.entries.get(f"{result}/{inputs.MARKER}")
        return marker is not None and input_path in self.entries and marker[1] >= self.newest_mtime(input_path)

    def _hint(self) -> str:
        names = sorted(p + ("/" if self.entries[p][0] == "d" else "") for p in self.children.get("", []))
        names = [n for n in names if not n.startswith(".")]
        if not names:
            return " (it is empty)" if self.entries or self.children else ""
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f" (it holds {shown}; the pattern is relative to it, e.g. --files 'inputs/*')"


def _matches(pattern: tuple[str, ...], parts: list[str]) -> bool:
    """glob.glob(recursive=True) on one relative path: `**` alone is zero or more folders."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, parts[i:]) for i in range(len(parts) + 1))
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _matches(rest, parts[1:])


def parse(text: str, where: str) -> Listing:
    """The script's output (a pod's log: oneclient's lines may be around it) as a Listing."""
    listing = Listing(where)
    lines = text.splitlines()
    try:
        first = next(i for i, line in enumerate(lines) if line.startswith(BEGIN + " "))
        last = max(i for i, line in enumerate(lines) if line == END)
    except (StopIteration, ValueError):
        raise PrimageError(f"the listing of {where} did not complete (the pod's log has no listing)") from None
    for line in lines[first:last]:
        if line.startswith(BEGIN):
            continue
        if line == "?":
            raise PrimageError(
                f"a name in {where} holds a control character (a newline or a tab): rename it, it cannot be listed"
            )
        kind, _, rest = line.partition(" ")
        mtime, _, path = rest.partition(" ")
        try:
            listing.add(path, kind, float(mtime))
        except ValueError:
            continue  # a line of oneclient's between the listing's (standard error shares the log)
    return listing


def local_argv(mount: str, pattern: str, output: str) -> list[str]:
    """The command a pod runs (sh -c SCRIPT sh MOUNT ARGS...); also how the tests run it here."""
    return ["/bin/sh", "-c", script(), "sh", os.fspath(mount), *plan(pattern, output)]
