"""The IM auth file: read as IM reads it, sent in a header IM's own REST code decodes back to
the same entries, refused when others can read it, and never shown in a message."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from primage import im_auth
from primage.errors import PrimageError

SECRET = "s3cr3t-never-shown"  # noqa: S105 (a test value)

# Auth files as users write them for im_client and EC3 (what IM's own reader understands).
FILES = {
    "plain": (
        f"id = im; type = InfrastructureManager; username = alice; password = {SECRET}\nid = dummy; type = Dummy\n"
    ),
    "comments and blank lines": (
        "# my clouds\n\n"
        f"id = im; type = InfrastructureManager; username = alice; password = {SECRET}\n"
        "   # an indented comment\n"
        "id = ost; type = OpenStack; host = https://keystone.example.eu:5000; username = a; "
        f"password = '{SECRET};with=punctuation'; tenant = t; auth_version = 3.x_password\n"
    ),
    "double quotes around a single quote": (
        f'id = im; type = InfrastructureManager; username = alice; password = "{SECRET}\'quoted"\n'
    ),
    "multi-line value": (
        f"id = im; type = InfrastructureManager; username = alice; password = {SECRET}\n"
        "id = k8s; type = Kubernetes; host = https://k8s.example.eu; token = line1\\nline2\\nline3\n"
    ),
}


def write(tmp_path, text: str, mode: int = 0o600, name: str = "auth.dat"):
    path = tmp_path / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)
    return path


def im_decodes(header: str) -> list[dict]:
    """What IM's REST server makes of an AUTHORIZATION header (its own code, not a copy)."""
    import IM.rest.REST  # noqa: F401  (IM's routers import their app first)
    from IM.rest.routers import get_auth_header

    return get_auth_header(SimpleNamespace(base_url="http://127.0.0.1/"), header).auth_list


@pytest.mark.parametrize("case", FILES, ids=str)
def test_entries_are_those_ims_own_reader_finds(tmp_path, case):
    from IM.auth import Authentication

    path = write(tmp_path, FILES[case])
    credentials = im_auth.load(path)
    assert [dict(line) for line in credentials.lines] == Authentication.read_auth_data(str(path))


@pytest.mark.parametrize("case", FILES, ids=str)
def test_header_decodes_at_im_to_the_same_entries(tmp_path, case):
    credentials = im_auth.load(write(tmp_path, FILES[case]))
    assert im_decodes(credentials.header()) == [dict(line) for line in credentials.lines]


def test_a_file_value_is_read_here(tmp_path):
    key = write(tmp_path, "-----BEGIN KEY-----\nabc\n-----END KEY-----\n", name="key.pem")
    path = write(tmp_path, f"type = InfrastructureManager; username = a; password = file({key})\n")
    header = im_auth.load(path).header()
    assert im_decodes(header)[0]["password"] == "-----BEGIN KEY-----\nabc\n-----END KEY-----"  # noqa: S105


def test_refused_when_others_can_read_it(tmp_path):
    path = write(tmp_path, FILES["plain"], mode=0o644)
    with pytest.raises(PrimageError) as caught:
        im_auth.load(path)
    assert str(caught.value) == (f"{path}: other users can read this IM auth file (mode 0644); run: chmod 600 {path}")


def test_refused_when_the_group_can_read_it(tmp_path):
    path = write(tmp_path, FILES["plain"], mode=0o640)
    with pytest.raises(PrimageError, match=r"\(mode 0640\); run: chmod 600 "):
        im_auth.load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id = dummy; type = Dummy\n", "no 'type = InfrastructureManager' line"),
        ("type = InfrastructureManager; username = alice\n", "needs a username and a password (or a token)"),
        (f"id = im; type = InfrastructureManager; username alice {SECRET}\n", "auth.dat:1: expected 'key = value'"),
        (f"id = im; username = alice; password = {SECRET}\n", "auth.dat:1: every line needs a 'type'"),
        ("id = 9lives; type = Dummy\n", "auth.dat:1: id '9lives' is not valid"),
        (f"Bearer {SECRET}\n", "auth.dat:1: a bare 'Bearer' access token is not supported by primage yet"),
        (
            "type = InfrastructureManager; token = command(oidc-token egi)\n",
            "auth.dat:1 (token): oidc-agent is not running in this session (OIDC_SOCK is not set): start it with "
            "`eval $(oidc-agent)`, then `oidc-add egi`",
        ),
        (
            "type = InfrastructureManager; token = oidc-agent(my account)\n",
            "auth.dat:1 (token): oidc-agent(ACCOUNT) needs an account short name, e.g. oidc-agent(egi)",
        ),
    ],
    ids=["no IM line", "no password", "not key=value", "no type", "bad id", "bearer", "no agent", "bad account"],
)
def test_bad_files_get_a_message_naming_line_and_key_never_the_value(tmp_path, monkeypatch, text, message):
    monkeypatch.delenv("OIDC_SOCK", raising=False)
    path = write(tmp_path, text)
    with pytest.raises(PrimageError) as caught:
        im_auth.load(path)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_missing_file_says_how_to_give_one(tmp_path):
    with pytest.raises(PrimageError, match=r"IM auth file not found \(give --auth FILE or set PRIMAGE_IM_AUTH\)"):
        im_auth.load(tmp_path / "nope.dat")


def test_values_never_show_in_repr(tmp_path):
    credentials = im_auth.load(write(tmp_path, FILES["plain"]))
    assert SECRET not in repr(credentials)
    assert SECRET in credentials.header()  # but they do reach IM
