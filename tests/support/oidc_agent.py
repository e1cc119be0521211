"""Debian's oidc-agent, run for a test: its own socket and home folder, an account made without
any prompt from a refresh token the test got through the real authorization-code flow.

oidc-gen reads the client's settings from a private file (`--file`), the refresh token from
the environment (`--rt-env`) and the encryption password from a private file (`--pw-file`),
so no secret is on any command line; `--cp` gives it the test provider's CA.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

from primage import tls
from primage.oidc.provider import Client, LocalProvider

TIMEOUT = 60


class OidcAgent:
    def __init__(self, folder: Path):
        self.folder = folder
        self.home = folder / "home"
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "TMPDIR": str(folder)}
        started = subprocess.run(
            # No automatic re-authentication: it would wait for a person to sign in again.
            [
                "oidc-agent",
                "--json",
                "--quiet",
                "--no-autoreauthenticate",
                "-a",
                str(folder / "agent-XXXXXX" / "socket"),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        answer = json.loads(started.stdout)
        self.socket, self.pid = answer["socket"], int(answer["dpid"])
        self.env["OIDC_SOCK"] = self.socket

    def add_account(self, name: str, provider: LocalProvider, client: Client, refresh_token: str) -> None:
        settings = {
            "client_id": client.client_id,
            "client_secret": client.secret,
            "issuer_url": provider.issuer,
            "scope": " ".join(client.scopes),
            "redirect_uris": [client.redirect_uri],
        }
        config = tls.write_private(self.folder / f"{name}.client.json", json.dumps(settings).encode())
        password = tls.write_private(self.folder / f"{name}.password", secrets.token_urlsafe(16).encode() + b"\n")
        generated = subprocess.run(
            [
                "oidc-gen",
                name,
                f"--file={config}",
                "--rt-env",
                f"--cp={provider.ca}",
                f"--pw-file={password}",
                "--confirm-default",
                "--no-url-call",
                "--prompt=none",
            ],
            env={**self.env, "OIDC_REFRESH_TOKEN": refresh_token},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
            check=False,
        )
        if generated.returncode != 0 or "success" not in generated.stdout:
            raise AssertionError(f"oidc-gen failed ({generated.returncode}): {generated.stdout}{generated.stderr}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
