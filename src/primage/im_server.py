"""A real Infrastructure Manager server on 127.0.0.1, for tests and local trials.

IM reads its configuration only from an im.cfg beside its package or /etc/im; rather than
writing there, `python -m primage.im_server` sets IM's Config before IM's service module
is imported (it builds its REST server at import time) and then runs IM's own main().
Its database (SQLite), log and HTTP cache stay in a private folder.

With `oidc` settings it also accepts OpenID Connect access tokens (`token = ...` on the
InfrastructureManager auth line), as a site set up for EGI Check-in does: IM takes a token
whose issuer is listed, asks that issuer's userinfo endpoint about it (which refuses a forged
or revoked one) and admits the user only when the groups claim holds every required group.
IM verifies the issuer's TLS certificate against `ca_bundle` (the system's CAs plus the
test provider's CA).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from . import tls
from .errors import PrimageError

# The two auth lines IM's REST API needs for local use: IM's own user and the Dummy cloud.
DUMMY_AUTH = (
    "id = im; type = InfrastructureManager; username = primage; password = {password}\nid = dummy; type = Dummy\n"
)
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class OIDCSettings:
    """IM's OpenID Connect settings (OIDC_ISSUERS, OIDC_GROUPS_CLAIM, OIDC_GROUPS)."""

    issuers: tuple[str, ...]
    groups: tuple[str, ...] = ()  # every one required; none: any user of the issuers
    groups_claim: str = "eduperson_entitlement"
    ca: Path | None = None  # a CA to trust besides the system's (the test provider's)

    def arguments(self, bundle: Path | None) -> list[str]:
        arguments = [argument for issuer in self.issuers for argument in ("--oidc-issuer", issuer)]
        arguments += [argument for group in self.groups for argument in ("--oidc-group", group)]
        arguments += ["--oidc-groups-claim", self.groups_claim]
        return arguments + (["--ca-bundle", str(bundle)] if bundle else [])


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
    # IM users allowed in (username -> password), as a site's USER_DB; None lets anyone in.
    users: dict[str, str] | None = None
    oidc: OIDCSettings | None = None
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
        if self.users is not None:
            command += ["--user-db", str(self._write_user_db())]
        if self.oidc is not None:
            command += self.oidc.arguments(self._write_ca_bundle())
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

    def _write_user_db(self) -> Path:
        path = self.folder / "users.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"users": [{"username": u, "password": p} for u, p in (self.users or {}).items()]}, out)
        return path

    def _write_ca_bundle(self) -> Path | None:
        if self.oidc is None or self.oidc.ca is None:
            return None
        system = SYSTEM_CA_BUNDLE.read_bytes() if SYSTEM_CA_BUNDLE.is_file() else b""
        return tls.write_private(self.folder / "ca-bundle.pem", system + b"\n" + self.oidc.ca.read_bytes())

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
    parser.add_argument("--user-db", help="IM USER_DB: JSON file of the users allowed in (default: anyone)")
    parser.add_argument(
        "--oidc-issuer", action="append", default=[], metavar="URL", help="IM OIDC_ISSUERS: accept its access tokens"
    )
    parser.add_argument(
        "--oidc-group", action="append", default=[], metavar="GROUP", help="IM OIDC_GROUPS: required (every one)"
    )
    parser.add_argument("--oidc-groups-claim", default="eduperson_entitlement", help="IM OIDC_GROUPS_CLAIM")
    parser.add_argument(
        "--ca-bundle", help="PEM bundle IM verifies the issuers' certificates with (else the system's CAs)"
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
    if args.user_db:
        Config.USER_DB = args.user_db
    if args.oidc_issuer:
        Config.OIDC_ISSUERS = args.oidc_issuer
        Config.OIDC_GROUPS = args.oidc_group
        Config.OIDC_GROUPS_CLAIM = args.oidc_groups_claim
        Config.VERIFI_SSL = True  # IM's default, False, would take any certificate from the issuer
    if args.ca_bundle:
        os.environ["REQUESTS_CA_BUNDLE"] = args.ca_bundle  # what requests verifies with when verify=True

    from IM import im_service  # builds the REST server from Config on import

    sys.argv = [sys.argv[0]]  # IM's main() parses the command line itself
    return im_service.main() or 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
