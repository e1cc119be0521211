"""OpenID Connect access tokens for IM's auth lines: from oidc-agent, a command, or a private file.

An auth line says where its token comes from, and primage reads it there, never from a
command line or the environment:

    id = im; type = InfrastructureManager; token = oidc-agent(egi)     # oidc-agent's account 'egi'
    id = im; type = InfrastructureManager; token = command(oidc-token egi)   # as im_client writes it
    id = im; type = InfrastructureManager; token = file(~/.config/primage/egi.token)   # mode 0600

`oidc-agent(ACCOUNT)` asks the running agent (through `oidc-token`, which talks to it over
its socket, OIDC_SOCK) for a token valid at least MIN_VALID seconds; `command(...)` runs the
command without a shell and takes its output. Tokens last about an hour at Check-in, less than
a deployment may be followed: each request to IM takes the token again once the last one is
within RENEW_MARGIN seconds of its expiry (its JWT `exp`), so a long `primage deploy` goes on
with fresh tokens. A token that is expired when it is needed stops primage with a message
saying how to renew it. The token travels only in the AUTHORIZATION header of IM's REST API.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .errors import PrimageError

MIN_VALID = 300  # seconds a token from oidc-agent must still be valid when primage gets it
RENEW_MARGIN = 60  # take a new token when the one in hand expires within this many seconds
COMMAND_TIMEOUT = 60
_ACCOUNT = re.compile(r"[\w.@+-]+")


def claim(token: str, name: str):
    """A claim of a JWT access token, read but not verified (IM and its issuer verify), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return payload.get(name) if isinstance(payload, dict) else None


def expiry(token: str) -> float | None:
    """The `exp` of a JWT access token, else None (an opaque token)."""
    exp = claim(token, "exp")
    return float(exp) if isinstance(exp, int | float) else None


def _when(timestamp: float) -> str:
    ago = int(time.time() - timestamp)
    since = f"{ago // 60} min ago" if ago >= 60 else f"{ago} s ago"
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC ({since})"


@dataclass
class Token:
    """An access token that is read again from its source when it is about to expire."""

    where: str  # auth file, line and key, for messages
    origin: str  # e.g. "oidc-agent account 'egi'"
    renew: str  # what the user runs to get a fresh one
    read: Callable[[], tuple[str, float | None]] = field(repr=False)
    _value: str = field(default="", repr=False)
    _expires: float | None = None

    def current(self) -> str:
        if not self._value or (self._expires is not None and self._expires - time.time() < RENEW_MARGIN):
            self._value, self._expires = self.read()
            if not self._value:
                raise PrimageError(f"{self.where}: {self.origin} gave no access token; {self.renew}")
            if self._expires is not None and self._expires <= time.time():
                raise PrimageError(
                    f"{self.where}: the access token from {self.origin} expired at {_when(self._expires)}; {self.renew}"
                )
        return self._value


# --------------------------------------------------------------------------- sources


def oidc_agent_renewal(account: str) -> str:
    return (
        f"get a fresh one with `oidc-token {account}` (oidc-agent running, account loaded: `oidc-add {account}`); "
        f"if its refresh token expired too: `oidc-gen --reauthenticate {account}`"
    )


def file_token(path: Path, where: str) -> Token:
    """A token kept in a file only its owner can read (refreshed by the user, or by a cron job)."""
    renew = f"put a fresh one in {path}, e.g. `oidc-token ACCOUNT > {path}` (the file mode stays 0600)"

    def read() -> tuple[str, float | None]:
        refuse_shared_secret_file(path, where)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise PrimageError(f"{where}: cannot read the token file {path}: {exc.strerror or exc}") from None
        return token, expiry(token)

    return Token(where, f"the file {path}", renew, read)


def refuse_shared_secret_file(path: Path, where: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise PrimageError(f"{where}: cannot read the token file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise PrimageError(
            f"{where}: other users can read the file {path} (mode {mode & 0o7777:04o}); run: chmod 600 {path}"
        )


def oidc_agent_token(account: str, where: str) -> Token:
    account = account.strip()
    if not _ACCOUNT.fullmatch(account):
        raise PrimageError(f"{where}: oidc-agent(ACCOUNT) needs an account short name, e.g. oidc-agent(egi)")
    argv = ["oidc-token", "--name=primage", f"--time={MIN_VALID}", account]
    return command_token(argv, where, f"oidc-agent account '{account}'", oidc_agent_renewal(account), MIN_VALID)


def command_token(
    argv: list[str], where: str, origin: str | None = None, renew: str | None = None, min_valid: int = 0
) -> Token:
    """The output of a command (never given the token; its stdout is the token)."""
    if not argv:
        raise PrimageError(f"{where}: command() needs a command, e.g. command(oidc-token egi)")
    is_oidc_token = Path(argv[0]).name == "oidc-token"
    account = next((arg for arg in reversed(argv[1:]) if not arg.startswith("-")), "ACCOUNT")
    origin = origin or f"`{shlex.join(argv)}`"
    renew = renew or (oidc_agent_renewal(account) if is_oidc_token else f"check that `{shlex.join(argv)}` works")

    def read() -> tuple[str, float | None]:
        program = shutil.which(argv[0])
        if program is None:
            hint = " (Debian: apt install oidc-agent-cli)" if is_oidc_token else ""
            raise PrimageError(f"{where}: {argv[0]} is not installed{hint}")
        if is_oidc_token and not os.environ.get("OIDC_SOCK"):
            raise PrimageError(
                f"{where}: oidc-agent is not running in this session (OIDC_SOCK is not set): start it with "
                f"`eval $(oidc-agent)`, then `oidc-add {account}`"
            )
        started = time.time()
        try:
            result = subprocess.run(
                [program, *argv[1:]],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            waiting = " (oidc-agent may be waiting for you to sign in again)" if is_oidc_token else ""
            raise PrimageError(
                f"{where}: {origin} gave no token within {COMMAND_TIMEOUT} s{waiting}; {renew}"
            ) from None
        if result.returncode != 0:
            said = " ".join(result.stderr.split())[:300] or f"exit status {result.returncode}"
            raise PrimageError(f"{where}: {origin} gave no access token ({said}); {renew}")
        token = result.stdout.strip()
        exp = expiry(token)
        if exp is None and min_valid:
            exp = started + min_valid  # oidc-agent vouches for that long, whatever the token's form
        return token, exp

    return Token(where, origin, renew, read)
