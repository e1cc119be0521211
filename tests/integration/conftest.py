"""A real IM server (the `im` package) on 127.0.0.1, with SQLite and the Dummy connector,
and the real IM client against it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from primage.im_server import LocalIM

BIN = Path(sys.executable).parent


@dataclass
class ImClient:
    """The real `im_client` command against the local server."""

    url: str
    auth: Path

    def run(self, *args: str, check: bool = True) -> str:
        completed = subprocess.run(
            [str(BIN / "im_client"), "-r", self.url, "-a", str(self.auth), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout + completed.stderr
        if check and completed.returncode != 0:
            raise AssertionError(f"im_client {' '.join(args)} failed ({completed.returncode}):\n{output}")
        return output

    def create(self, document: Path) -> str:
        output = self.run("create", str(document))
        match = re.search(r"successfully created with ID: (\S+)", output)
        assert match, output
        return match.group(1)

    def vm_states(self, infrastructure: str) -> dict[str, str]:
        output = self.run("getstate", infrastructure)
        return dict(re.findall(r"VM ID: (\S+) is in state: (\w+)", output))

    def wait_running(self, infrastructure: str, count: int, timeout: float = 90) -> dict[str, str]:
        """Wait until `count` VMs exist and all run (IM launches them one after another)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.vm_states(infrastructure)
            if len(states) >= count and all(s in ("running", "configured", "unconfigured") for s in states.values()):
                return states
            time.sleep(1)
        raise AssertionError(f"infrastructure {infrastructure} not running: {self.vm_states(infrastructure)}")

    def outputs(self, infrastructure: str) -> dict[str, str]:
        output = self.run("getoutputs", infrastructure)
        return dict(re.findall(r"^(\w+) = (.*)$", output, re.M))

    def infrastructures(self) -> list[str]:
        output = self.run("list", check=False)
        return re.findall(r"^\s*([0-9a-f-]{36})\s*$", output, re.M)

    def destroy(self, infrastructure: str) -> None:
        output = self.run("destroy", infrastructure, "-y")
        assert "successfully destroyed" in output, output


def _private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


# The IM users of the local server, as a site's USER_DB lists them: credentials of others are refused.
IM_USERS = {"tester": "test-only-password", "other": "other-test-only-password"}


def im_auth_text(user: str, password: str | None = None) -> str:
    password = IM_USERS[user] if password is None else password
    return (
        f"id = im; type = InfrastructureManager; username = {user}; password = {password}\nid = dummy; type = Dummy\n"
    )


@pytest.fixture(scope="session")
def local_im(tmp_path_factory):
    folder = tmp_path_factory.mktemp("im")
    server = LocalIM(folder, contextualization_timeout=5, users=IM_USERS).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def im_client(local_im, tmp_path_factory):
    auth = _private(tmp_path_factory.mktemp("auth") / "auth.dat", im_auth_text("tester"))
    return ImClient(local_im.url, auth)


@pytest.fixture
def private_file(tmp_path):
    def make(name: str, text: str) -> Path:
        return _private(tmp_path / name, text)

    return make


@pytest.fixture
def auth_file(tmp_path):
    """A private IM auth file for a user of the local server (or a wrong password)."""

    def make(user: str = "tester", password: str | None = None, name: str = "auth.dat") -> Path:
        return _private(tmp_path / name, im_auth_text(user, password))

    return make
