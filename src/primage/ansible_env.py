"""The environment Ansible, Molecule and ansible-lint run in, for the primage.platform collection.

Ansible finds a collection only under `<path>/ansible_collections/<namespace>/<name>`.
The repository keeps the collection at `ansible/`, so the harness links it into an
untracked collections folder and points ANSIBLE_COLLECTIONS_PATH there. Molecule's
own "prerun" (which copies the collection into ~/.ansible) is turned off in every
scenario, so what runs is always the working tree, and $HOME stays clean.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import paths, yamlio
from .errors import PrimageError


def collection_name() -> tuple[str, str]:
    galaxy, _ = yamlio.load_file(paths.ansible_dir() / "galaxy.yml")
    try:
        return galaxy["namespace"], galaxy["name"]
    except (TypeError, KeyError):
        raise PrimageError(
            "galaxy.yml needs 'namespace' and 'name'", file=paths.relative(paths.ansible_dir() / "galaxy.yml")
        ) from None


def collections_path() -> Path:
    """An ANSIBLE_COLLECTIONS_PATH entry under which the working tree's collection is installed."""
    namespace, name = collection_name()
    base = paths.state_dir() / "collections"
    link = base / "ansible_collections" / namespace / name
    target = paths.ansible_dir()
    if link.is_symlink() and link.resolve() == target.resolve():
        return base
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)
    return base


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ plus what Ansible, Molecule and ansible-lint need to see this checkout."""
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path())
    env["PRIMAGE_ROOT"] = str(paths.root())
    # Galaxy is not reachable from every site; never let a run silently try it.
    env.setdefault("ANSIBLE_GALAXY_DISABLE_GPG_VERIFY", "true")
    env.setdefault("ANSIBLE_FORCE_COLOR", "false")
    env.setdefault("ANSIBLE_NOCOLOR", "true")
    env.setdefault("PY_COLORS", "0")
    return env


def run_tool(tool: str, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    """Run an Ansible tool of this environment (ansible-lint, ansible-playbook...) from the
    repository root, with the working tree's collection on the collections path."""
    return subprocess.run(
        [str(Path(sys.executable).parent / tool), *args],
        cwd=paths.root(),
        env=environment(),
        capture_output=capture,
        text=True,
        check=False,
    )


def shell_exports() -> str:
    """`export` lines for `eval "$(primage env)"`, to run molecule or ansible by hand."""
    env = environment()
    keys = ("PATH", "ANSIBLE_COLLECTIONS_PATH", "PRIMAGE_ROOT")
    return "\n".join(f"export {key}='{env[key]}'" for key in keys)
