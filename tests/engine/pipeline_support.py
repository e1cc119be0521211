"""Support of the engine tests of the image pipeline: the real Docker engine, the fixture
images of tests/fixtures/images, and the `primage` command run as a user runs it.
Test modules import the session fixtures from here."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from primage import engine
from primage.images import revision, spec

IMAGES = FIXTURES / "images"
IMAGE_TESTS = FIXTURES / "image-tests"
PRIMAGE = Path(sys.executable).parent / "primage"


@dataclass
class Command:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)

    def results(self) -> dict[str, dict]:
        return {r["image"]: r for r in self.json()["results"]}


def primage_command(*argv, stdin: str | None = None, timeout: float = 1200) -> Command:
    completed = subprocess.run(
        [str(PRIMAGE), *map(str, argv)],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    return Command(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture(scope="session")
def docker_api():
    import docker

    engine.ensure_docker()
    return docker.from_env(timeout=600).api


def fixture_plan(images_dir: Path = IMAGES) -> dict[str, revision.Planned]:
    return {item.image.directory: item for item in revision.plan(spec.build_order(spec.load_set(images_dir)))}


@pytest.fixture(scope="session")
def built_fixtures(docker_api):
    """`primage images build` of every fixture image, once; the images are removed at the end."""
    run = primage_command("images", "build", "--images-dir", IMAGES, "--json")
    yield run
    for item in reversed(list(fixture_plan().values())):
        remove_image(docker_api, item.reference)
        if isinstance(item.image, spec.Variant):  # and the test build `images test` may have made
            remove_image(docker_api, item.reference + "-test")


def remove_image(docker_api, reference: str) -> None:
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_api.remove_image(reference)
