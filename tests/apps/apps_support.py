"""Support of the application commands' tests on the real engine, with the real images of this revision.

`primage` runs as a separate process each time (a second terminal sees what the first did), with
PRIMAGE_CACHE pointing at a folder of the test session: its state folder, its container labels
and names are its own, and everything it created on the shared engine is removed at the end.
The images are those `primage images build segmentation jupyter` made at this revision (the tox
env `apps` builds them first); without them every test fails, naming the command. Test modules
import the session fixtures from here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

PRIMAGE = Path(sys.executable).parent / "primage"
APP_UID = APP_GID = 1000  # the images' fixed user (containers/imaging/Dockerfile)
MOUNT = "/mnt/onedata"
RESULTS = {"mask.nii.gz", "segmentation.json", "overlay.png", "_SUCCESS"}
SAMPLE_COUNT = 8


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """The session's PRIMAGE_CACHE, for this process and every primage it runs."""
    cache = tmp_path_factory.mktemp("primage-cache")
    cache.chmod(0o777)  # the unreadable-space test runs primage as another user
    previous = os.environ.get("PRIMAGE_CACHE")
    os.environ["PRIMAGE_CACHE"] = str(cache)
    yield cache
    _remove_engine_objects()
    if previous is None:
        os.environ.pop("PRIMAGE_CACHE", None)
    else:
        os.environ["PRIMAGE_CACHE"] = previous


def checkout_label() -> str:
    from primage.apps import local

    return f"{local.CHECKOUT_LABEL}={local.state_id()}"


def _remove_engine_objects() -> None:
    label = checkout_label()
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True)
    for container in listed.stdout.split():
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label={label}"], capture_output=True, text=True
    )
    for volume in volumes.stdout.split():
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)


def containers(app: str) -> list[str]:
    """Names of the engine's containers of an application of this session, running or not."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label={checkout_label()}",
         "--filter", f"label=eu.primage.app={app}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def primage(*argv, timeout: float = 900, user: int | None = None, env: dict | None = None) -> Done:
    """`primage ARGV...` in a process of its own (as `user`, a uid, when given)."""
    command = [str(PRIMAGE), *[str(a) for a in argv]]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    return Done(completed.returncode, completed.stdout, completed.stderr)


class Running:
    """A `primage` started in the background, as from a terminal: Ctrl-C (SIGINT) works on it."""

    def __init__(self, folder: Path, *argv):
        self.out_path, self.err_path = folder / "run.out", folder / "run.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                [str(PRIMAGE), *[str(a) for a in argv]],
                stdout=out,
                stderr=err,
                cwd=ROOT,
                # A shell's background job ignores SIGINT; a terminal's foreground command does not.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )

    def wait(self, timeout: float = 600) -> Done:
        code = self.process.wait(timeout=timeout)
        return Done(code, self.out_path.read_text(), self.err_path.read_text())

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_for(condition, timeout: float = 300, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def images(session_cache) -> dict[str, str]:
    from primage import engine
    from primage.apps import prepare

    wanted = {name: prepare.default_image(name) for name in ("segmentation", "jupyter")}
    missing = [reference for reference in wanted.values() if not engine.image_present(reference)]
    if missing:
        pytest.fail(
            f"not built at this revision: {', '.join(missing)}; run `primage images build segmentation jupyter` "
            "(the tox env apps does)"
        )
    return wanted


def writable_by_app(folder: Path) -> Path:
    """A folder the images' user may write, as a mounted space is for it."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, APP_UID, APP_GID)
    return folder


@pytest.fixture(scope="session")
def sample(images, tmp_path_factory) -> Path:
    """Sample volumes with known masks, written once by the segmentation image's own `sample` command."""
    folder = writable_by_app(tmp_path_factory.mktemp("sample") / "space")
    made = subprocess.run(
        ["docker", "run", "--rm", "--name", f"primage-apps-test-sample-{os.getpid()}", "--user", f"{APP_UID}:{APP_GID}",
         "-v", f"{folder}:{MOUNT}", images["segmentation"], "primage-segment", "sample", MOUNT, "--count",
         str(SAMPLE_COUNT)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return folder


@pytest.fixture
def make_space(sample, tmp_path):
    """make_space(n): a space holding the first n sample inputs (NIfTI, DICOM series...), its own copy."""

    def make(count: int, name: str = "space") -> tuple[Path, list[dict]]:
        cases = json.loads((sample / "sample.json").read_text())["cases"][:count]
        space = tmp_path / name
        for case in cases:
            source = sample / case["input"]
            target = space / case["input"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
        return writable_by_app(space), cases

    return make


def result_folder(space: Path, name: str, case_input: str) -> Path:
    return space / "outputs" / name / case_input.removesuffix(".gz").removesuffix(".nii")


def leftovers(space: Path) -> list[str]:
    """Temporary files an interrupted task may have left (the task contract writes .NAME.tmp-* first)."""
    return sorted(str(p.relative_to(space)) for p in space.rglob(".*.tmp*"))
