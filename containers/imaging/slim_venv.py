"""Slim the imaging virtualenv in the build stage: the segmentation image must stay under 350 MB.

Usage: python3 slim_venv.py VENV

- removes the packages' own test suites (about 50 MB), except the example data that the
  applications' unit tests read as real images (nibabel's MR volumes, pydicom's test files
  are not in a `tests` folder and stay);
- strips the debug symbols left in the wheels' shared libraries (OpenBLAS, libgfortran and
  Pillow's codecs: about 14 MB); the smoke test run next proves the libraries still load;
- compiles bytecode only for the modules the applications import (pip ran with --no-compile:
  bytecode of every module would add about 30 MB, and the rest of scipy is compiled in memory
  on the rare import).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Test folders kept: real images that tests of the applications read (relative to site-packages).
KEEP = {Path("nibabel/tests/data")}
# What an imaging application imports; their bytecode is written here, as root, once.
IMPORT_CLOSURE = [
    "numpy",
    "numpy.linalg",
    "scipy.ndimage",
    "nibabel",
    "nibabel.nifti1",
    "pydicom",
    "pydicom.pixels",
    "PIL.Image",
    "PIL.ImageDraw",
    "PIL.ImageFont",
    "PIL.PngImagePlugin",
]


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"slim_venv: expected one site-packages folder in {venv}, found {len(found)}")
    return found[0]


def remove_test_suites(packages: Path) -> int:
    removed = 0
    for folder in sorted(packages.rglob("tests")):
        if not folder.is_dir():
            continue  # removed with a parent already
        relative = folder.relative_to(packages)
        if not any(keep.is_relative_to(relative) for keep in KEEP):
            removed += _remove(folder)
            continue
        for entry in folder.iterdir():
            if not any(_holds(relative / entry.name, keep) for keep in KEEP):
                removed += _remove(entry)
    return removed


def _holds(entry: Path, keep: Path) -> bool:
    return keep == entry or keep.is_relative_to(entry)


def _remove(entry: Path) -> int:
    size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) if entry.is_dir() else entry.stat().st_size
    if entry.is_dir():
        shutil.rmtree(entry)
    else:
        entry.unlink()
    return size


def strip_shared_objects(packages: Path) -> int:
    before = _tree_size(packages)
    libraries = [str(f) for f in packages.rglob("*.so*") if f.is_file() and not f.is_symlink()]
    subprocess.run(["strip", "--strip-unneeded", *libraries], check=True)
    return before - _tree_size(packages)


def _tree_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def compile_import_closure(venv: Path) -> None:
    statement = "; ".join(f"import {module}" for module in IMPORT_CLOSURE)
    subprocess.run([str(venv / "bin" / "python3"), "-c", statement], check=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit("usage: slim_venv.py VENV")
    venv = Path(argv[0])
    packages = site_packages(venv)
    tests = remove_test_suites(packages)
    symbols = strip_shared_objects(packages)
    compile_import_closure(venv)
    print(f"slim_venv: removed {tests / 1e6:.1f} MB of test suites, {symbols / 1e6:.1f} MB of debug symbols")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
