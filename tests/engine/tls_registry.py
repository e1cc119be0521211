"""A real registry for the push tests: Debian's docker-registry (Distribution 2.8, what the registry
role installs) on loopback, with TLS from a CA generated for the run and htpasswd (bcrypt)
authentication, all in a temporary folder; stopped and removed at the end.

`trust()` puts the CA where the engine (and primage) look for a registry's CA,
/etc/docker/certs.d/<host:port>/ca.crt, and removes it again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import yaml

from primage import tls

BINARY = Path("/usr/bin/docker-registry")
CERTS_DIR = Path("/etc/docker/certs.d")
USER = "primage-ci"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it: (ca, cert, key)."""
    made = tls.loopback_certificates(folder, "primage push-test CA", "registry")
    return made.ca, made.certificate, made.key


class TlsRegistry:
    """docker-registry serving https://127.0.0.1:<port> for one user with a random password."""

    def __init__(self, folder: Path, read_only: bool = False):
        self.folder = folder
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(18)
        self.ca, cert, key = make_certificates(folder)
        htpasswd = folder / "htpasswd"
        htpasswd.write_text(f"{USER}:{bcrypt.hashpw(self.password.encode(), bcrypt.gensalt()).decode()}\n")
        htpasswd.chmod(0o600)
        config = {
            "version": "0.1",
            "log": {"level": "info"},
            "storage": {
                "filesystem": {"rootdirectory": str(folder / "storage")},
                "delete": {"enabled": True},
                # Read-only maintenance mode: logins and reads work, every upload is refused.
                "maintenance": {"readonly": {"enabled": read_only}},
            },
            "http": {
                "addr": self.host,
                "secret": secrets.token_hex(16),
                "tls": {"certificate": str(cert), "key": str(key)},
            },
            "auth": {"htpasswd": {"realm": "primage push test", "path": str(htpasswd)}},
        }
        self.config = folder / "config.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.config.chmod(0o600)
        self.log = folder / "registry.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(BINARY), "serve", str(self.config)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                self.get("/v2/")
                return
            time.sleep(0.3)
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # ------------------------------------------------------------------ the registry's HTTP API

    def get(self, path: str, accept: str | None = None) -> tuple[int, dict, bytes]:
        """GET with the user's credentials over TLS verified against the CA: (status, headers, body)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        request = urllib.request.Request(f"https://{self.host}{path}")
        token = base64.b64encode(f"{USER}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310 (https only)
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def repositories(self) -> list[str]:
        status, _, body = self.get("/v2/_catalog")
        assert status == 200, body
        return json.loads(body)["repositories"]

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.get(f"/v2/{repository}/tags/list")
        return (json.loads(body).get("tags") or []) if status == 200 else []

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
        status, headers, _ = self.get(f"/v2/{repository}/manifests/{tag}", accept)
        return headers.get("Docker-Content-Digest") if status == 200 else None

    # ------------------------------------------------------------------ trust

    @contextlib.contextmanager
    def trust(self):
        """The CA in /etc/docker/certs.d/<host:port>/ca.crt while the block runs."""
        folder = CERTS_DIR / self.host
        folder.mkdir(parents=True, exist_ok=False)
        try:
            shutil.copy(self.ca, folder / "ca.crt")
            yield folder
        finally:
            shutil.rmtree(folder)
