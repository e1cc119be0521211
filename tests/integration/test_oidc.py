"""EGI Check-in login end to end, against real parts: ORY Hydra with the project's login and consent
provider on loopback (TLS from a CA made for the run) standing in for Check-in, a real IM server
set up as a site sets it up for Check-in (the issuer, the `eduperson_entitlement` claim, the
PRIMAGE_Project group required), Debian's oidc-agent, and `primage deploy|infra|undeploy`.

The member's access token deploys, lists and undeploys; the outsider's, a tampered one, one
signed by someone else, one from another issuer and an expired one are refused with messages
that say why. The token is on no command line of primage or of what it starts (every
/proc/*/cmdline is watched while it runs), in no output, no log and no record."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from primage import im_auth, infra, oidc, pieces
from primage.im_rest import IMClient
from primage.im_server import LocalIM, OIDCSettings
from primage.oidc.provider import LocalProvider
from support.oidc_agent import OidcAgent

pytestmark = pytest.mark.integration

PRIMAGE = str(Path(sys.executable).parent / "primage")
CASE = next(p for p in pieces.discover() if p.kind == "tosca-case" and p.name == "kubernetes_cluster-smallest")
CLIENT_REDIRECT = "http://localhost:4242"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LocalProvider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture(scope="module")
def client(provider):
    return provider.register_client("primage-cli", redirect_uri=CLIENT_REDIRECT)


@pytest.fixture(scope="module")
def oidc_im(provider, tmp_path_factory):
    settings = OIDCSettings(issuers=(provider.issuer,), groups=(oidc.PROJECT_GROUP,), ca=provider.ca)
    server = LocalIM(tmp_path_factory.mktemp("im-oidc"), contextualization_timeout=5, oidc=settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def member_token(provider, client):
    return provider.authorization_code(client, "member")["access_token"]


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMAGE_STATE_DIR", str(tmp_path / "state"))
    for name in (infra.ENV_URL, infra.ENV_AUTH):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


def private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def auth_file(folder: Path, token_source: str) -> Path:
    return private(
        folder / "auth.dat",
        f"id = im; type = InfrastructureManager; token = {token_source}\nid = dummy; type = Dummy\n",
    )


def token_file_auth(folder: Path, token: str) -> Path:
    return auth_file(folder, f"file({private(folder / 'egi.token', token + chr(10))})")


class CommandLines:
    """Every command line on the machine, read again and again while primage runs."""

    def __init__(self):
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):  # gone meanwhile
                        self.seen.add(
                            Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
                        )
            time.sleep(0.02)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(*argv, env: dict | None = None, secret: str = "") -> subprocess.CompletedProcess:
    """primage as users run it, its command line and its children's watched for the token."""
    with CommandLines() as lines:
        done = subprocess.run(
            [PRIMAGE, *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
            check=False,
        )
    assert any(PRIMAGE in line and str(argv[0]) in line for line in lines.seen), "the watcher saw primage run"
    if secret:
        signature = secret.rsplit(".", 1)[-1]
        assert not [line for line in lines.seen if signature in line], "the token was on a command line"
        assert signature not in done.stdout + done.stderr
    return done


def deploy_list_undeploy(im: LocalIM, auth: Path, state: Path, token: str, env: dict | None = None) -> None:
    tpl = CASE.related[0].stem
    deployed = run(
        "deploy",
        tpl,
        "-i",
        CASE.path,
        "--artifacts",
        "local",
        "--im",
        im.url,
        "--auth",
        auth,
        "--json",
        env=env,
        secret=token,
    )
    assert deployed.stdout, deployed.stderr
    infrastructure = json.loads(deployed.stdout)["id"]
    try:
        assert deployed.returncode == 1, deployed.stderr  # Dummy VMs end unconfigured
        assert f"primage: infrastructure {infrastructure} is unconfigured" in deployed.stderr
        listed = run("infra", "list", "--json", env=env, secret=token)
        assert listed.returncode == 0, listed.stderr
        assert [row["id"] for row in json.loads(listed.stdout)] == [infrastructure]
    finally:
        undeployed = run("undeploy", infrastructure, env=env, secret=token)
    assert undeployed.returncode == 0, undeployed.stderr
    assert undeployed.stdout == f"{infrastructure} deleted\n"
    signature = token.rsplit(".", 1)[-1]
    assert signature not in (state / infra.RECORDS_FILE).read_text()
    assert signature not in im.log.read_text()


def refused(im: LocalIM, auth: Path, token: str = "") -> str:
    listed = run("infra", "list", "--im", im.url, "--auth", auth, secret=token)
    assert listed.returncode == 4, listed.stderr
    return listed.stderr


# --------------------------------------------------------------------------- the provider


def test_the_provider_speaks_openid_connect_over_verified_tls(provider, client):
    discovery = provider.discovery()
    assert discovery["issuer"] == provider.issuer
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "introspection_endpoint"):
        assert discovery[name].startswith("https://127.0.0.1:"), name
    assert "eduperson_entitlement" in discovery["scopes_supported"]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(discovery["jwks_uri"], timeout=10)  # not trusted without the run's CA

    tokens = provider.authorization_code(client, "member")
    assert {"access_token", "id_token", "refresh_token"} <= set(tokens)
    access = claims(tokens["access_token"])
    assert access["iss"] == provider.issuer
    assert access["scope"] == " ".join(oidc.SCOPES)
    assert oidc.GROUPS_CLAIM not in access  # as at Check-in: the groups come from userinfo
    assert oidc.PROJECT_GROUP in claims(tokens["id_token"])[oidc.GROUPS_CLAIM]
    userinfo = requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        verify=str(provider.ca),
        timeout=10,
    ).json()
    assert userinfo["sub"] == provider.user("member").subject
    assert oidc.PROJECT_GROUP in userinfo[oidc.GROUPS_CLAIM]

    outsider = provider.authorization_code(client, "outsider")
    assert oidc.PROJECT_GROUP not in claims(outsider["id_token"])[oidc.GROUPS_CLAIM]
    refreshed = provider.refresh(client, tokens["refresh_token"])
    assert claims(refreshed["access_token"])["sub"] == access["sub"]


def test_a_wrong_password_gets_the_form_again(provider, client):
    with pytest.raises(Exception, match="the test provider refused the password of member"):
        provider.authorization_code(client, "member", password="not-the-password")  # noqa: S106 (a wrong one)


# --------------------------------------------------------------------------- IM and primage


def test_the_members_token_deploys_lists_and_undeploys(oidc_im, member_token, tmp_path, state):
    deploy_list_undeploy(oidc_im, token_file_auth(tmp_path, member_token), state, member_token)


def test_the_outsiders_token_is_refused(oidc_im, provider, client, tmp_path, state):
    token = provider.authorization_code(client, "outsider")["access_token"]
    message = refused(oidc_im, token_file_auth(tmp_path, token), token)
    assert message == (
        f"primage: IM at {oidc_im.url} refused the access token of {tmp_path}/auth.dat: its user is not in the group "
        "this IM requires (its OIDC_GROUPS; for PRIMAGE, membership of the PRIMAGE_Project group at EGI Check-in: "
        "ask the group's managers to add you)\n"
    )


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["sub"] = "someone-else@egi.eu"
    return f"{header}.{_b64(json.dumps(data).encode())}.{signature}"


def self_signed(token: str) -> str:
    """The same claims signed with a key the issuer never had."""
    data = claims(token)
    key = ec.generate_private_key(ec.SECP256R1())
    header = {"alg": "ES256", "kid": "forged", "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(data).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


FORGERIES = {
    "tampered claims": (tampered, "HTTP 400: Token signature mismatch. Check that you provided  a valid token"),
    "signed by another key": (self_signed, "HTTP 401: The request could not be authorized. Check that you provided"),
}


@pytest.mark.parametrize("case", FORGERIES)
def test_a_forged_token_is_refused(oidc_im, member_token, tmp_path, state, case):
    forge, answer = FORGERIES[case]
    token = forge(member_token)
    message = refused(oidc_im, token_file_auth(tmp_path, token), token)
    assert message.startswith(
        f"primage: IM at {oidc_im.url} refused the access token of {tmp_path}/auth.dat: its issuer's userinfo "
        f"endpoint refused it ({answer}"
    )
    assert message.endswith(" in the right format.): a forged or revoked token, or one meant for another service\n")


def test_a_token_of_another_issuer_is_refused(oidc_im, tmp_path, state):
    with LocalProvider(tmp_path / "elsewhere") as elsewhere:
        other = elsewhere.register_client("primage-cli", redirect_uri=CLIENT_REDIRECT)
        token = elsewhere.authorization_code(other, "member")["access_token"]
        message = refused(oidc_im, token_file_auth(tmp_path, token), token)
    assert message == (
        f"primage: IM at {oidc_im.url} refused the access token of {tmp_path}/auth.dat: IM does not accept tokens of "
        f"issuer {elsewhere.issuer} (its OIDC_ISSUERS); get the token from the issuer IM trusts (EGI Check-in)\n"
    )


def test_an_expired_token_is_refused_by_primage_and_by_im(oidc_im, provider, tmp_path, state):
    short = provider.register_client("primage-short", redirect_uri=CLIENT_REDIRECT, lifespan="1s")
    token = provider.authorization_code(short, "member")["access_token"]
    time.sleep(2.5)
    auth = token_file_auth(tmp_path, token)
    listed = run("infra", "list", "--im", oidc_im.url, "--auth", auth, secret=token)
    assert listed.returncode == 1
    assert listed.stderr.startswith(
        f"primage: {auth}:1 (token): the access token from the file {tmp_path}/egi.token expired at "
    )
    assert listed.stderr.endswith(
        f"; put a fresh one in {tmp_path}/egi.token, e.g. `oidc-token ACCOUNT > {tmp_path}/egi.token` "
        "(the file mode stays 0600)\n"
    )
    # IM itself refuses it too, and primage says how to renew when IM is the one that notices.
    answer = requests.get(
        f"{oidc_im.url}/infrastructures",
        headers={"Accept": "application/json", "Authorization": f"type = InfrastructureManager; token = {token}"},
        timeout=30,
    )
    assert answer.status_code == 401
    assert "OIDC auth Token expired" in answer.json()["message"]
    fresh = token_file_auth(tmp_path, provider.authorization_code(short, "member")["access_token"])
    im = IMClient(oidc_im.url, im_auth.load(fresh))
    assert str(im._im_error(401, answer.json()["message"], "the list", None)) == (
        f"IM at {oidc_im.url} refused the access token of {fresh}: it has expired; put a fresh one in "
        f"{tmp_path}/egi.token, e.g. `oidc-token ACCOUNT > {tmp_path}/egi.token` (the file mode stays 0600)"
    )


# --------------------------------------------------------------------------- oidc-agent


@pytest.fixture
def agent(tmp_path):
    running = OidcAgent(tmp_path / "agent")
    yield running
    running.stop()


def test_oidc_agent_gives_the_token_that_deploys_lists_and_undeploys(oidc_im, provider, client, agent, tmp_path, state):
    refresh = provider.authorization_code(client, "member")["refresh_token"]
    agent.add_account("primage-test", provider, client, refresh)
    auth = auth_file(tmp_path, "oidc-agent(primage-test)")
    env = {"OIDC_SOCK": agent.socket}
    check = subprocess.run(["oidc-token", "primage-test"], env=agent.env, capture_output=True, text=True, check=True)
    token = check.stdout.strip()
    assert claims(token)["sub"] == provider.user("member").subject
    deploy_list_undeploy(oidc_im, auth, state, token, env=env)


def test_a_revoked_refresh_token_says_to_reauthenticate(oidc_im, provider, agent, tmp_path, state):
    # Access tokens of 4 minutes: oidc-agent must refresh to give one valid for primage's 5.
    short = provider.register_client("primage-agent-short", redirect_uri=CLIENT_REDIRECT, lifespan="4m")
    refresh = provider.authorization_code(short, "member")["refresh_token"]
    agent.add_account("primage-revoked", provider, short, refresh)
    requests.delete(
        f"{provider.admin_url}/admin/oauth2/auth/sessions/consent",
        params={"subject": provider.user("member").subject, "all": "true"},
        verify=str(provider.ca),
        timeout=10,
    ).raise_for_status()
    listed = run(
        "infra",
        "list",
        "--im",
        oidc_im.url,
        "--auth",
        auth_file(tmp_path, "oidc-agent(primage-revoked)"),
        env={"OIDC_SOCK": agent.socket},
    )
    assert listed.returncode == 1
    assert listed.stderr.startswith(
        f"primage: {tmp_path}/auth.dat:1 (token): oidc-agent account 'primage-revoked' gave no access token ("
    )
    assert listed.stderr.endswith(
        "get a fresh one with `oidc-token primage-revoked` (oidc-agent running, account loaded: `oidc-add "
        "primage-revoked`); if its refresh token expired too: `oidc-gen --reauthenticate primage-revoked`\n"
    )


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
