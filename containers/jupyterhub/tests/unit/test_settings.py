"""The hub's settings: every wrong or missing value refused naming it, and the configuration
JupyterHub gets from good ones (run inside the image: `primage images test jupyterhub`)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from traitlets.config import Config

sys.path.insert(0, "/opt/primage/jupyterhub")

import primage_hub

SECRET = "s3cret"  # noqa: S105 (a value made for the test)
GROUP = "urn:mace:egi.eu:group:PRIMAGE_Project:role=member#aai.egi.eu"


@pytest.fixture
def environ(tmp_path) -> dict:
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "tls.crt").write_text("certificate")
    (tls / "tls.key").write_text("key")
    secret = tmp_path / "client-secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o400)
    return {
        "PRIMAGE_HUB_OIDC_ISSUER": "https://aai.example.eu/auth/realms/egi/",
        "PRIMAGE_HUB_OIDC_CLIENT_ID": "primage-notebooks",
        "PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE": str(secret),
        "PRIMAGE_HUB_OIDC_ALLOWED_GROUPS": GROUP,
        "PRIMAGE_HUB_PUBLIC_URL": "https://notebooks.example.eu:30443",
        "PRIMAGE_HUB_TLS_DIR": str(tls),
        "PRIMAGE_HUB_DATA_DIR": str(tmp_path / "data"),
    }


def refused(environ: dict) -> str:
    with pytest.raises(primage_hub.SettingsError) as error:
        primage_hub.load(environ)
    return str(error.value)


def test_good_settings_are_read_with_check_in_defaults(environ):
    settings = primage_hub.load(environ)
    assert settings.issuer == "https://aai.example.eu/auth/realms/egi"
    assert settings.client_secret == SECRET
    assert SECRET not in repr(settings)
    assert settings.callback_url == "https://notebooks.example.eu:30443/hub/oauth_callback"
    assert settings.groups_claim == "eduperson_entitlement"
    assert settings.scopes == ("openid", "profile", "email", "eduperson_entitlement")
    assert settings.allowed_groups == {GROUP}
    assert settings.port == 8443
    assert settings.spawner is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("PRIMAGE_HUB_OIDC_ISSUER", "PRIMAGE_HUB_OIDC_ISSUER is not set"),
        ("PRIMAGE_HUB_OIDC_CLIENT_ID", "PRIMAGE_HUB_OIDC_CLIENT_ID is not set"),
        ("PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE", "PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE is not set"),
        ("PRIMAGE_HUB_OIDC_ALLOWED_GROUPS", "PRIMAGE_HUB_OIDC_ALLOWED_GROUPS is not set"),
        ("PRIMAGE_HUB_PUBLIC_URL", "PRIMAGE_HUB_PUBLIC_URL is not set"),
        ("PRIMAGE_HUB_TLS_DIR", "PRIMAGE_HUB_TLS_DIR is not set"),
    ],
)
def test_every_required_setting_is_named_when_missing(environ, name, message):
    del environ[name]
    assert message in refused(environ)


def test_plain_http_urls_are_refused(environ):
    environ["PRIMAGE_HUB_PUBLIC_URL"] = "http://notebooks.example.eu:30080"
    assert "PRIMAGE_HUB_PUBLIC_URL='http://notebooks.example.eu:30080' is not an https URL" in refused(environ)
    environ["PRIMAGE_HUB_PUBLIC_URL"] = "https://notebooks.example.eu"
    environ["PRIMAGE_HUB_OIDC_ISSUER"] = "http://aai.example.eu"
    assert "PRIMAGE_HUB_OIDC_ISSUER='http://aai.example.eu' is not an https URL" in refused(environ)


def test_a_client_secret_in_the_environment_is_refused(environ):
    environ["OAUTH_CLIENT_SECRET"] = SECRET
    message = refused(environ)
    assert "OAUTH_CLIENT_SECRET is set" in message
    assert SECRET not in message


def test_a_client_secret_file_others_can_read_is_refused(environ):
    path = Path(environ["PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE"])
    path.chmod(0o644)
    assert "can be read by any user (mode 0644)" in refused(environ)
    missing = dict(environ, PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE=str(path.parent / "absent"))
    assert "cannot be read" in refused(missing)


def test_an_empty_client_secret_is_refused(environ, tmp_path):
    empty = tmp_path / "empty-secret"
    empty.write_text("\n")
    empty.chmod(0o400)
    environ["PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE"] = str(empty)
    assert "is empty" in refused(environ)


def test_the_tls_pair_is_required(environ):
    Path(environ["PRIMAGE_HUB_TLS_DIR"], "tls.key").unlink()
    assert "the hub serves HTTPS only and needs tls.key" in refused(environ)


def test_scopes_without_openid_and_bad_numbers_are_refused(environ):
    assert "lacks openid" in refused(dict(environ, PRIMAGE_HUB_OIDC_SCOPES="profile email"))
    assert "PRIMAGE_HUB_PORT='https' is not a number" in refused(dict(environ, PRIMAGE_HUB_PORT="https"))
    assert "expected one of client_secret_basic, client_secret_post" in refused(
        dict(environ, PRIMAGE_HUB_OIDC_TOKEN_AUTH="private_key_jwt")  # noqa: S106 (a method name)
    )


def test_spawner_settings(environ):
    environ.update(
        PRIMAGE_HUB_NOTEBOOK_IMAGE="primage/jupyter:0.1.0",
        PRIMAGE_HUB_SPACE_HOST_PATH="/mnt/onedata",
        PRIMAGE_HUB_HOME_STORAGE_CLASS="standard",
    )
    spawner = primage_hub.load(environ).spawner
    assert spawner.image == "primage/jupyter:0.1.0"
    assert spawner.space_mount == "/mnt/onedata"
    assert "is not an absolute path" in refused(dict(environ, PRIMAGE_HUB_SPACE_HOST_PATH="mnt"))
    assert "is not a Kubernetes namespace name" in refused(dict(environ, PRIMAGE_HUB_NAMESPACE="Bad_NS"))


def test_the_refusal_page_says_which_claim_and_group_admit(environ):
    message = primage_hub.load(dict(environ, PRIMAGE_HUB_GROUP_HELP_URL="https://aai.egi.eu/registry")).refusal()
    assert "eduperson_entitlement claim must hold " + GROUP in message
    assert "Ask to join the group at https://aai.egi.eu/registry" in message


ENDPOINTS = primage_hub.Endpoints(
    "https://aai.example.eu/auth", "https://aai.example.eu/token", "https://aai.example.eu/userinfo", None
)


def test_configuration_admits_only_the_allowed_groups(environ):
    environ["PRIMAGE_HUB_NOTEBOOK_IMAGE"] = "primage/jupyter:0.1.0"
    c = Config()
    primage_hub.configure(c, primage_hub.load(environ), ENDPOINTS)
    auth = c.GenericOAuthenticator
    assert c.JupyterHub.bind_url == "https://:8443"
    assert auth.userdata_url == "https://aai.example.eu/userinfo"
    assert auth.allowed_groups == {GROUP}
    assert auth.manage_groups is True
    groups = auth.auth_state_groups_key
    other = "urn:mace:egi.eu:group:vo.access.egi.eu:role=member#aai.egi.eu"
    assert groups({"oauth_user": {"eduperson_entitlement": [other, GROUP]}}) == [GROUP]
    assert groups({"oauth_user": {"eduperson_entitlement": [other]}}) == []
    assert groups({"oauth_user": {}}) == []
    assert c.KubeSpawner.cmd is None  # the image's own command
    other = Config()
    primage_hub.configure(
        other, primage_hub.load(dict(environ, PRIMAGE_HUB_NOTEBOOK_COMMAND="jupyterhub-singleuser --debug")), ENDPOINTS
    )
    assert other.KubeSpawner.cmd == ["jupyterhub-singleuser", "--debug"]
    assert c.KubeSpawner.container_security_context["allowPrivilegeEscalation"] is False
    assert c.KubeSpawner.automount_service_account_token is False


def test_the_authenticator_takes_the_configuration(environ):
    """JupyterHub's own classes accept every value (a wrong trait name or type fails here)."""
    from oauthenticator.generic import GenericOAuthenticator

    c = Config()
    primage_hub.configure(c, primage_hub.load(environ), ENDPOINTS)
    authenticator = GenericOAuthenticator(config=c)
    assert authenticator.allowed_groups == {GROUP}
    assert authenticator.token_url == ENDPOINTS.token
    assert authenticator.basic_auth is True
    assert authenticator.scope == ["openid", "profile", "email", "eduperson_entitlement"]


def test_the_spawner_makes_a_user_pod_from_the_configuration(environ, monkeypatch):
    """KubeSpawner's own pod manifest for a user: the notebook image, its home claim, the space."""
    import asyncio

    import kubespawner.spawner
    from kubespawner import KubeSpawner

    # The manifest is made offline: no API server is asked, so no credentials are loaded.
    monkeypatch.setattr(kubespawner.spawner, "load_config", lambda **kwargs: None)
    environ.update(
        PRIMAGE_HUB_NOTEBOOK_IMAGE="primage/jupyter:0.1.0",
        PRIMAGE_HUB_HOME_STORAGE_CLASS="standard",
        PRIMAGE_HUB_SPACE_HOST_PATH="/mnt/onedata/primage",
    )
    c = Config()
    primage_hub.configure(c, primage_hub.load(environ), ENDPOINTS)

    async def manifest():
        spawner = KubeSpawner(config=c, _mock=True)
        return spawner, await spawner.get_pod_manifest()

    spawner, pod = asyncio.run(manifest())
    assert spawner.storage_class == "standard"
    container = pod.spec.containers[0]
    assert pod.metadata.name == spawner.pod_name
    assert pod.metadata.name.startswith("notebook-")
    assert container.image == "primage/jupyter:0.1.0"
    assert not container.args  # the image's own command (its start script runs jupyterhub-singleuser)
    assert container.security_context["allowPrivilegeEscalation"] is False
    # Requests below the limits: a pod limited to 2 CPUs still fits a 2-core node beside the hub.
    resources = container.resources
    assert (resources.limits["cpu"], resources.requests["cpu"]) == (2.0, 0.5)
    assert (resources.limits["memory"], resources.requests["memory"]) == (4 * 2**30, 2**30)
    claims = {v.name: v.persistent_volume_claim for v in pod.spec.volumes if v.persistent_volume_claim}
    assert claims["home"]["claimName"] == spawner.pvc_name
    assert spawner.pvc_name.startswith("home-")
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    assert mounts["home"] == "/home/primage"
    assert mounts["space"] == "/mnt/onedata"
    assert pod.spec.automount_service_account_token is False


# ---------------------------------------------------------------------------- discovery


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(private, hashes.SHA256())
    )
    key, cert = folder / "issuer.key", folder / "issuer.crt"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, cert


@pytest.fixture
def issuer(tmp_path):
    """An HTTPS server on loopback publishing a discovery document (a self-signed certificate)."""
    key, cert = self_signed(tmp_path)
    documents = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write((body or "").encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, documents
    server.shutdown()


def test_endpoints_come_from_the_discovery_document(environ, issuer):
    url, cert, documents = issuer
    environ.update(PRIMAGE_HUB_OIDC_ISSUER=url, PRIMAGE_HUB_OIDC_CA_FILE=str(cert))
    documents["/.well-known/openid-configuration"] = json.dumps(
        {
            "issuer": url,
            "authorization_endpoint": f"{url}/auth",
            "token_endpoint": f"{url}/token",
            "userinfo_endpoint": f"{url}/userinfo",
        }
    )
    found = primage_hub.endpoints(primage_hub.load(environ))
    assert found.userinfo == f"{url}/userinfo"
    assert found.end_session is None


def test_a_wrong_discovery_document_is_refused(environ, issuer):
    url, cert, documents = issuer
    environ.update(PRIMAGE_HUB_OIDC_ISSUER=url, PRIMAGE_HUB_OIDC_CA_FILE=str(cert))
    settings = primage_hub.load(environ)
    with pytest.raises(primage_hub.SettingsError, match="answered HTTP 404"):
        primage_hub.endpoints(settings)
    documents["/.well-known/openid-configuration"] = json.dumps({"issuer": "https://elsewhere.example.eu"})
    with pytest.raises(primage_hub.SettingsError, match=re.escape("names issuer 'https://elsewhere.example.eu'")):
        primage_hub.endpoints(settings)
    documents["/.well-known/openid-configuration"] = json.dumps({"issuer": url, "token_endpoint": f"{url}/t"})
    with pytest.raises(primage_hub.SettingsError, match="lacks authorization_endpoint, userinfo_endpoint"):
        primage_hub.endpoints(settings)
    # Without the CA the issuer's certificate is not trusted.
    untrusting = primage_hub.load({k: v for k, v in environ.items() if k != "PRIMAGE_HUB_OIDC_CA_FILE"})
    with pytest.raises(primage_hub.SettingsError, match=r"cannot be read: .*CERTIFICATE_VERIFY_FAILED"):
        primage_hub.endpoints(untrusting)
