"""Access tokens on IM auth lines: read from a private file or a command (oidc-token's way), taken
again when they near expiry, refused with a message saying how to renew when expired, and never
shown in a message or a repr."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time

import pytest

from primage import im_auth, im_tokens
from primage.errors import PrimageError


def jwt(exp: float, marker: str = "a") -> str:
    """A token shaped like a JWT access token (header.payload.signature); primage reads only `exp`."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256'})}.{part({'exp': int(exp), 'sub': marker})}.c2lnbmF0dXJl{marker}"


def private(path, text: str, mode: int = 0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)
    return path


def auth_with(tmp_path, token_source: str):
    return private(
        tmp_path / "auth.dat", f"id = im; type = InfrastructureManager; token = {token_source}\nid = d; type = Dummy\n"
    )


def test_expiry_reads_the_jwt_exp_and_nothing_from_opaque_tokens():
    assert im_tokens.expiry(jwt(1_900_000_000)) == 1_900_000_000
    assert im_tokens.expiry("ory_at_opaque-token") is None
    assert im_tokens.expiry("a.b!.c") is None


def test_a_private_token_file_reaches_im_in_the_header(tmp_path):
    token = jwt(time.time() + 3600)
    path = private(tmp_path / "egi.token", token + "\n")
    credentials = im_auth.load(auth_with(tmp_path, f"file({path})"))
    assert credentials.uses_token()
    assert f"token = {token}" in credentials.header()
    assert token not in repr(credentials)


def test_a_token_file_others_can_read_is_refused(tmp_path):
    token = jwt(time.time() + 3600)
    path = private(tmp_path / "egi.token", token, mode=0o644)
    with pytest.raises(PrimageError) as caught:
        im_auth.load(auth_with(tmp_path, f"file({path})"))
    assert str(caught.value) == (
        f"{tmp_path}/auth.dat:1 (token): other users can read the file {path} (mode 0644); run: chmod 600 {path}"
    )
    assert token not in str(caught.value)


def test_an_expired_token_says_when_and_how_to_renew(tmp_path):
    token = jwt(time.time() - 600)
    path = private(tmp_path / "egi.token", token)
    with pytest.raises(PrimageError) as caught:
        im_auth.load(auth_with(tmp_path, f"file({path})"))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}/auth.dat:1 (token): the access token from the file {path} expired at ")
    assert "(10 min ago); put a fresh one in" in message
    assert f"`oidc-token ACCOUNT > {path}`" in message
    assert token not in message


def test_a_token_near_expiry_is_read_again_for_the_next_request(tmp_path):
    path = private(tmp_path / "egi.token", jwt(time.time() + im_tokens.RENEW_MARGIN + 2, "first"))
    credentials = im_auth.load(auth_with(tmp_path, f"file({path})"))
    assert "first" in credentials.header()
    private(path, jwt(time.time() + 3600, "second"))
    assert "first" in credentials.header()  # still valid long enough: not read again
    time.sleep(2.5)
    assert "second" in credentials.header()


def test_a_command_gives_the_token_without_it_on_any_command_line(tmp_path):
    token = jwt(time.time() + 3600)
    script = private(tmp_path / "token-command", f"#!{sys.executable}\nprint({token!r})\n", mode=0o700)
    credentials = im_auth.load(auth_with(tmp_path, f"command({script} --account egi)"))
    assert f"token = {token}" in credentials.header()


def test_a_failing_command_is_named_with_its_message_and_a_hint(tmp_path):
    script = private(tmp_path / "broken", "#!/bin/sh\necho 'no such account' >&2\nexit 3\n", mode=0o700)
    with pytest.raises(PrimageError) as caught:
        im_auth.load(auth_with(tmp_path, f"command({script})"))
    assert str(caught.value) == (
        f"{tmp_path}/auth.dat:1 (token): `{script}` gave no access token (no such account); check that `{script}` works"
    )


def test_oidc_token_missing_says_which_package_gives_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrimageError, match=r"oidc-token is not installed \(Debian: apt install oidc-agent-cli\)"):
        im_auth.load(auth_with(tmp_path, "oidc-agent(egi)"))


def test_a_password_file_others_can_read_is_refused_too(tmp_path):
    secret = private(tmp_path / "password", "s3cr3t", mode=0o640)
    path = private(tmp_path / "auth.dat", f"type = InfrastructureManager; username = a; password = file({secret})\n")
    with pytest.raises(PrimageError, match=r"other users can read the file .* \(mode 0640\); run: chmod 600"):
        im_auth.load(path)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o640
