"""The notebook hub from outside, signing users in through a real OpenID Connect provider.

ORY Hydra with the project's login provider (`primage.oidc`) stands in for EGI Check-in on
loopback; the hub runs as its image's own command with the settings a site gives (issuer,
client id, the client secret in a private file, the group that admits), HTTPS with a CA made
for the run. The browser's whole flow runs as HTTP requests: the member reaches the hub's home,
the outsider gets the refusal page saying which claim and group admit, nobody signed out sees
anything, plain HTTP gets nothing, and the client secret is in no log and no container setting.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import APP_UID, Docker
from primage import oidc, tls
from primage.im_server import free_port
from primage.oidc.provider import LocalProvider

pytestmark = pytest.mark.engine

TLS_DIR = "/etc/primage/hub-tls"  # where the jupyter role mounts the hub's TLS Secret
SECRET_FILE = "/var/run/secrets/primage-hub/client-secret"  # noqa: S105 (a path)
CA_FILE = "/etc/primage/oidc-ca.crt"
CLIENT_ID = "primage-notebooks"
SIZE_LIMIT = 450 * 1000 * 1000  # bytes, as the engine counts them


def private_to_app(path: Path, mode: int = 0o400) -> Path:
    """A file only the image's user can read, as a Secret volume with defaultMode 0400 gives it."""
    os.chown(path, APP_UID, APP_UID)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LocalProvider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture(scope="module")
def site(provider, image, tmp_path_factory):
    """What a site gives the hub: certificates, the registered client's secret, the settings."""
    folder = tmp_path_factory.mktemp("hub-site")
    port, api_port, proxy_port = free_port(), free_port(), free_port()
    public = f"https://127.0.0.1:{port}"
    client = provider.register_client(CLIENT_ID, redirect_uri=f"{public}/hub/oauth_callback")
    certificates = tls.loopback_certificates(folder / "ca", "primage test hub CA", "hub")
    tls_dir = folder / "tls"
    tls_dir.mkdir()
    shutil.copy(certificates.certificate, tls_dir / "tls.crt")
    shutil.copy(certificates.key, tls_dir / "tls.key")
    private_to_app(tls_dir / "tls.key")
    secrets_dir = folder / "secrets"
    secrets_dir.mkdir()
    private_to_app(tls.write_private(secrets_dir / "client-secret", client.secret.encode()))
    bundle = folder / "browser-ca.crt"
    bundle.write_bytes(provider.ca.read_bytes() + certificates.ca.read_bytes())
    env = {
        "PRIMAGE_HUB_OIDC_ISSUER": provider.issuer,
        "PRIMAGE_HUB_OIDC_CLIENT_ID": CLIENT_ID,
        "PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE": SECRET_FILE,
        "PRIMAGE_HUB_OIDC_ALLOWED_GROUPS": oidc.PROJECT_GROUP,
        "PRIMAGE_HUB_OIDC_CA_FILE": CA_FILE,
        "PRIMAGE_HUB_PUBLIC_URL": public,
        "PRIMAGE_HUB_TLS_DIR": TLS_DIR,
        "PRIMAGE_HUB_PORT": str(port),
        "PRIMAGE_HUB_API_PORT": str(api_port),
        "PRIMAGE_HUB_PROXY_API_PORT": str(proxy_port),
        "PRIMAGE_HUB_GROUP_HELP_URL": "https://aai.egi.eu/registry",
    }
    volumes = [
        (str(tls_dir), TLS_DIR, "ro"),
        (str(secrets_dir), str(Path(SECRET_FILE).parent), "ro"),
        (str(provider.ca), CA_FILE, "ro"),
    ]
    return {"public": public, "port": port, "env": env, "volumes": volumes, "bundle": str(bundle), "client": client}


@pytest.fixture(scope="module")
def hub(image, site):
    """The hub running on the host's network (the provider listens on loopback only)."""
    docker = Docker(image, "primage-test-jupyterhub-")
    name = docker.start(volumes=site["volumes"], env=site["env"], options=["--network", "host"])
    deadline = time.monotonic() + 120
    while True:
        if not docker.state(name)["Running"]:
            logs = docker.logs(name)
            docker.remove_all()
            pytest.fail(f"the hub exited: {logs[-2000:]}")
        try:
            if requests.get(f"{site['public']}/hub/health", verify=site["bundle"], timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            logs = docker.logs(name)
            docker.remove_all()
            pytest.fail(f"the hub did not answer on {site['public']} within 120 s: {logs[-2000:]}")
        time.sleep(1)
    yield {"name": name, "docker": docker, **site}
    docker.remove_all()


def sign_in(provider, hub, username: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    page = provider.sign_in_at(browser, f"{hub['public']}/hub/oauth_login", username, hub["bundle"])
    if page.status_code >= 500:
        logs = hub["docker"].logs(hub["name"])[-3000:]
        pytest.fail(f"the hub failed signing {username} in (HTTP {page.status_code}): {logs}")
    return browser, page


def test_the_image_stays_within_its_size(image):
    from conftest import image_config

    assert image_config(image)["Size"] <= SIZE_LIMIT


def test_the_member_signs_in_through_the_provider_and_reaches_the_hub(provider, hub):
    browser, page = sign_in(provider, hub, "member")
    assert page.status_code == 200, page.text[:500]
    assert page.url == f"{hub['public']}/hub/home"
    username = provider.user("member").subject.lower()
    assert username in page.text
    # The hub knows the user by the issuer's subject and made them a member of the project's group.
    answer = browser.get(f"{hub['public']}/hub/home", verify=hub["bundle"], timeout=10, allow_redirects=False)
    assert answer.status_code == 200


def test_the_outsider_is_refused_with_a_page_that_says_why(provider, hub):
    _, page = sign_in(provider, hub, "outsider")
    assert page.status_code == 403
    assert page.url.startswith(f"{hub['public']}/hub/oauth_callback")
    assert f"eduperson_entitlement claim must hold {oidc.PROJECT_GROUP}" in page.text.replace("&#34;", '"')
    assert "Ask to join the group at https://aai.egi.eu/registry" in page.text
    # Refused users get no session: the home page still sends them to sign in.
    _, home = sign_in(provider, hub, "outsider")
    assert home.status_code == 403


def test_nobody_signed_out_sees_anything(provider, hub):
    sign_in(provider, hub, "member")  # the member exists now; a stranger still sees nothing of theirs
    member = provider.user("member").subject.lower()
    stranger = requests.Session()
    for path in ("/hub/home", f"/user/{member}/lab", f"/user/{member}/api/contents", "/hub/admin"):
        answer = stranger.get(f"{hub['public']}{path}", verify=hub["bundle"], timeout=10)
        assert answer.url.startswith(f"{hub['public']}/hub/login"), (path, answer.url)
        assert member not in answer.text
    api = stranger.get(f"{hub['public']}/hub/api/users", verify=hub["bundle"], timeout=10)
    assert api.status_code == 403


def test_signing_out_ends_the_session(provider, hub):
    browser, page = sign_in(provider, hub, "member")
    assert page.status_code == 200
    browser.get(f"{hub['public']}/hub/logout", verify=hub["bundle"], timeout=10, allow_redirects=False)
    answer = browser.get(f"{hub['public']}/hub/home", verify=hub["bundle"], timeout=10, allow_redirects=False)
    assert answer.status_code == 302
    assert "/hub/login" in answer.headers["Location"]


def test_only_https_is_served(hub):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{hub['public']}/hub/health", timeout=10)  # the run's CA is not trusted
    with socket.create_connection(("127.0.0.1", hub["port"]), timeout=10) as plain:
        plain.sendall(b"GET /hub/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        plain.settimeout(10)
        received = b""
        try:
            while chunk := plain.recv(4096):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert not received.startswith(b"HTTP/1.1 2"), received[:200]
    assert not received.startswith(b"HTTP/1.1 3"), received[:200]
    assert b"JupyterHub" not in received


def test_the_client_secret_is_in_no_log_and_no_container_setting(provider, hub):
    sign_in(provider, hub, "member")
    secret = hub["client"].secret
    assert secret not in hub["docker"].logs(hub["name"])
    inspected = subprocess.run(["docker", "inspect", hub["name"]], capture_output=True, text=True, check=True)
    assert secret not in inspected.stdout


def run_settings(image: str, site: dict, **changes) -> subprocess.CompletedProcess:
    env = {key: value for key, value in {**site["env"], **changes}.items() if value is not None}
    return Docker(image, "primage-test-jupyterhub-").run(
        volumes=site["volumes"], env=env, options=["--network", "host"], timeout=120
    )


def test_a_missing_setting_stops_the_hub_with_one_line_naming_it(image, site):
    result = run_settings(image, site, PRIMAGE_HUB_OIDC_ALLOWED_GROUPS=None)
    assert result.returncode == 64
    assert result.stderr.strip() == (
        "primage-hub: PRIMAGE_HUB_OIDC_ALLOWED_GROUPS is not set: expected the group values that admit a user"
    )


def test_a_secret_in_the_environment_is_refused_without_showing_it(image, site):
    result = run_settings(image, site, OAUTH_CLIENT_SECRET="visible-s3cret")  # noqa: S106 (the refused value)
    assert result.returncode == 64
    assert "OAUTH_CLIENT_SECRET is set" in result.stderr
    assert "visible-s3cret" not in result.stderr + result.stdout


def test_an_unreachable_or_untrusted_issuer_stops_the_hub(image, site):
    unreachable = run_settings(image, site, PRIMAGE_HUB_OIDC_ISSUER=f"https://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 69
    assert "discovery document" in unreachable.stderr
    assert "cannot be read" in unreachable.stderr
    untrusted = run_settings(image, site, PRIMAGE_HUB_OIDC_CA_FILE=None)
    assert untrusted.returncode == 69
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
