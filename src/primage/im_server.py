"""A real Infrastructure Manager server on 127.0.0.1, for tests and local trials.

IM reads its configuration only from an im.cfg beside its package or /etc/im; rather than
writing there, `python -m primage.im_server` sets IM's Config before IM's service module
is imported (it builds its REST server at import time) and then runs IM's own main().
Its database (SQLite), log and HTTP cache stay in a private folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .errors import PrimageError

# The two auth lines IM's REST API needs for local use: IM's own user and the Dummy cloud.
DUMMY_AUTH = (
    "id = im; type = InfrastructureManager; username = primage; password = {password}\nid = dummy; type = Dummy\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalIM:
    """Start with `start()` (or as a context manager); `url` is its REST endpoint."""

    folder: Path
    port: int = field(default_factory=free_port)
    contextualization_timeout: int = 30
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.folder / "im.db"

    @property
    def log(self) -> Path:
        return self.folder / "im.log"

    def start(self, timeout: float = 60.0) -> LocalIM:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        command = [
            sys.executable,
            "-m",
            "primage.im_server",
            "--port",
            str(self.port),
            "--db",
            f"sqlite://{self.database}",
            "--log",
            str(self.log),
            "--ctxt-timeout",
            str(self.contextualization_timeout),
        ]
        stdout = open(self.folder / "im.out", "ab")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            command,
            cwd=self.folder,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrimageError(
                    f"the IM server exited with status {self.process.returncode}", file=self.folder / "im.out"
                )
            try:
                if requests.get(f"{self.url}/version", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise PrimageError(
            f"the IM server did not answer on {self.url} within {timeout:.0f} s", file=self.folder / "im.out"
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> LocalIM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m primage.im_server",
        description="Run IM's REST service on 127.0.0.1 with a private SQLite database.",
    )
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--db", required=True, help="IM DATA_DB, e.g. sqlite:///path/im.db")
    parser.add_argument("--log", required=True, help="IM log file")
    parser.add_argument(
        "--ctxt-timeout",
        type=int,
        default=30,
        help="IM's MAX_CONTEXTUALIZATION_TIME in seconds (Dummy VMs never contextualize)",
    )
    args = parser.parse_args(argv)

    from IM.config import Config

    Config.REST_ADDRESS = "127.0.0.1"
    Config.REST_PORT = args.port
    Config.DATA_DB = args.db
    Config.LOG_FILE = args.log
    Config.LOG_LEVEL = "INFO"
    Config.MAX_CONTEXTUALIZATION_TIME = args.ctxt_timeout
    Config.WAIT_RUNNING_VM_TIMEOUT = args.ctxt_timeout
    Config.WAIT_SSH_ACCCESS_TIMEOUT = args.ctxt_timeout
    Config.VM_INFO_UPDATE_FREQUENCY = 2
    Config.CHECK_CTXT_PROCESS_INTERVAL = 1
    Config.CONFMAMAGER_CHECK_STATE_INTERVAL = 1
    Config.UPDATE_CTXT_LOG_INTERVAL = 2
    Config.DELAY_BETWEEN_VM_RETRIES = 1

    from IM import im_service  # builds the REST server from Config on import

    sys.argv = [sys.argv[0]]  # IM's main() parses the command line itself
    return im_service.main() or 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
