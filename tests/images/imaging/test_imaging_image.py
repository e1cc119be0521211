"""The imaging foundation from outside: the user, PID 1, no build tools, the pinned libraries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import APP_GID, APP_UID, image_config

pytestmark = pytest.mark.engine

REQUIREMENTS = Path(__file__).resolve().parents[3] / "containers" / "imaging" / "requirements.txt"


def test_it_runs_as_the_fixed_non_root_user_under_tini(image, docker):
    config = image_config(image)
    assert config["Config"]["User"] == f"{APP_UID}:{APP_GID}"
    assert config["Config"]["Entrypoint"] == ["/usr/bin/tini", "--"]
    facts = docker.run("sh", "-c", "id -u; id -g; echo $HOME; tr '\\0' ' ' < /proc/1/cmdline")
    uid, gid, home, pid1 = facts.stdout.splitlines()
    assert (int(uid), int(gid), home) == (APP_UID, APP_GID, "/home/primage")
    assert pid1.startswith("/usr/bin/tini")


def test_no_build_tool_reached_the_final_image(docker):
    found = docker.run("sh", "-c", "command -v gcc cc strip pip pip3 make")
    assert found.stdout.strip() == ""
    apt_lists = docker.run("sh", "-c", "ls /var/lib/apt/lists | grep -v -e partial -e lock | wc -l")
    assert apt_lists.stdout.strip() == "0", "apt lists are removed in the layer that fetched them"


def test_the_installed_libraries_are_the_pinned_ones(docker):
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text(), re.M))
    assert {"numpy", "scipy", "nibabel", "pydicom", "pillow"} <= set(pins)
    script = "import importlib.metadata as m, sys; print(' '.join(f'{n}=={m.version(n)}' for n in sys.argv[1:]))"
    installed = docker.run("python3", "-c", script, *pins)
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.split() == [f"{name}=={version}" for name, version in pins.items()]


def test_its_smoke_test_passes_as_the_unprivileged_user(docker):
    smoke = docker.run("python3", "/opt/primage/imaging/smoke_test.py", options=["--network", "none"])
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "4 passed, 0 failed" in smoke.stdout
