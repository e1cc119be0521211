"""Fixtures of the tests that drive the built application images from outside, through Docker.

The image under test is PRIMAGE_TEST_IMAGE (a full local tag, set by `primage images test`);
without it every test fails, naming the commands to run. Containers carry the name prefix
`primage-test-<dir>-` and are removed at the end of each test.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The fixed ids of the imaging image's user (containers/imaging/Dockerfile).
APP_UID = 1000
APP_GID = 1000


@pytest.fixture(scope="module")
def image(request) -> str:
    directory = Path(request.path).parent.name
    tag = os.environ.get("PRIMAGE_TEST_IMAGE", "").strip()
    if not tag:
        pytest.fail(
            f"PRIMAGE_TEST_IMAGE is not set: run `primage images build {directory}` and "
            f"`primage images test {directory}` (or set it to a local tag of the {directory} image)"
        )
    inspected = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, text=True, check=False)
    if inspected.returncode != 0:
        pytest.fail(f"PRIMAGE_TEST_IMAGE={tag} is not a local image: {inspected.stderr.strip()}")
    return tag


@dataclass
class Docker:
    """`docker run` of the image under test, every container named and removed afterwards."""

    image: str
    prefix: str
    names: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def name(self) -> str:
        name = f"{self.prefix}{secrets.token_hex(4)}"
        self.names.append(name)
        return name

    def arguments(self, volumes=(), env=None, options=()) -> list[str]:
        args = []
        for source, target, *mode in volumes:
            args += ["-v", f"{source}:{target}" + (f":{mode[0]}" if mode else "")]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return [*args, *options]

    def run(self, *argv, volumes=(), env=None, options=(), timeout=300) -> subprocess.CompletedProcess:
        name = self.name()
        command = ["docker", "run", "--name", name, *self.arguments(volumes, env, options), self.image, *argv]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        finally:
            self.remove(name)

    def start(self, *argv, volumes=(), env=None, options=()) -> str:
        name = self.name()
        command = ["docker", "run", "-d", "--name", name, *self.arguments(volumes, env, options), self.image, *argv]
        subprocess.run(command, capture_output=True, text=True, check=True)
        return name

    def state(self, name: str) -> dict:
        result = subprocess.run(
            ["docker", "inspect", "--format", "{{json .State}}", name], capture_output=True, text=True, check=True
        )
        return json.loads(result.stdout)

    def logs(self, name: str) -> str:
        result = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
        return result.stdout + result.stderr

    def remove(self, name: str) -> None:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)

    def volume(self) -> str:
        """A named Docker volume (as a Kubernetes volume claim would be), removed afterwards."""
        name = self.name()
        subprocess.run(["docker", "volume", "create", name], capture_output=True, check=True)
        self.volumes.append(name)
        return name

    def remove_all(self) -> None:
        for name in self.names:
            self.remove(name)
        for name in self.volumes:
            subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=False)


@pytest.fixture
def docker(image, request):
    runner = Docker(image, f"primage-test-{Path(request.path).parent.name}-")
    yield runner
    runner.remove_all()


def writable_by_app(folder: Path) -> Path:
    """A host folder the image's user can write, as a mounted space is for it."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.chown(folder, APP_UID, APP_GID)
    except PermissionError:
        folder.chmod(0o777)
    return folder


@pytest.fixture
def space(tmp_path) -> Path:
    return writable_by_app(tmp_path / "space")


def image_config(image: str) -> dict:
    result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]
