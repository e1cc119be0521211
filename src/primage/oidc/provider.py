"""A real OpenID Connect provider on 127.0.0.1 standing in for EGI Check-in, for tests and trials.

ORY Hydra (built by `primage oidc build`) serves the OpenID Connect endpoints over HTTPS with
a certificate from a CA made for the run; the project's login and consent provider
(`login.py`) knows two test users, a member of the project's Check-in group and a user who
is not, and releases Check-in's claims. Access tokens are JWTs (as Check-in's), signed by
Hydra's own key, valid one hour unless a client asks for less.

Everything lives in one private folder: the CA, Hydra's configuration (its system secret:
mode 0600, never on a command line), its log, and `users.json` with the run's passwords.
Hydra keeps its data in memory: stopping it forgets every client and token.

`authorization_code()` runs the whole browser flow with HTTP requests (the authorization
request, the login form, consent, the redirect with the code, the token request with PKCE),
as a browser and a client would, so tests obtain real tokens for real users.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .. import tls, yamlio
from ..errors import PrimageError
from ..im_server import free_port
from . import PROJECT_GROUP, SCOPES
from .build import require_built
from .login import HydraAdmin, LoginServer, TestUser, users_json

OTHER_GROUP = "urn:mace:egi.eu:group:vo.access.egi.eu:role=member#aai.egi.eu"
REQUEST_TIMEOUT = 10
MAX_REDIRECTS = 10


def test_users() -> list[TestUser]:
    """A member of the project's group and a Check-in user outside it, with passwords made now."""
    return [
        TestUser(
            username="member",
            password=secrets.token_urlsafe(16),
            subject=hashlib.sha256(b"primage-member").hexdigest() + "@egi.eu",
            name="Maria Member",
            email="member@primage.test",
            entitlements=(OTHER_GROUP, PROJECT_GROUP),
        ),
        TestUser(
            username="outsider",
            password=secrets.token_urlsafe(16),
            subject=hashlib.sha256(b"primage-outsider").hexdigest() + "@egi.eu",
            name="Otto Outsider",
            email="outsider@primage.test",
            entitlements=(OTHER_GROUP,),
        ),
    ]


@dataclass
class Client:
    """An OAuth client registered at the provider (a site registers the platform at Check-in so)."""

    client_id: str
    secret: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...]


@dataclass
class LocalProvider:
    """Start with `start()` (or as a context manager); `issuer` is what tokens name in `iss`."""

    folder: Path
    users: list[TestUser] = field(default_factory=test_users)
    public_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    login: LoginServer | None = None
    process: subprocess.Popen | None = None
    certificates: tls.ServerCertificates | None = None

    login_port: int = field(default_factory=free_port)

    @property
    def issuer(self) -> str:
        """The login server's URL: it publishes the discovery document (see login.py)."""
        return f"https://127.0.0.1:{self.login_port}"

    @property
    def public_url(self) -> str:
        """Hydra's public endpoints (authorization, token, userinfo, keys)."""
        return f"https://127.0.0.1:{self.public_port}"

    @property
    def admin_url(self) -> str:
        return f"https://127.0.0.1:{self.admin_port}"

    @property
    def ca(self) -> Path:
        if self.certificates is None:
            raise PrimageError("the test OpenID provider is not started")
        return self.certificates.ca

    @property
    def log(self) -> Path:
        return self.folder / "hydra.log"

    def user(self, username: str) -> TestUser:
        return next(user for user in self.users if user.username == username)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 60.0) -> LocalProvider:
        binary = require_built()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        self.certificates = tls.loopback_certificates(self.folder, "primage test OpenID provider CA", "oidc")
        self.login = LoginServer(
            self.users,
            HydraAdmin(self.admin_url, self.ca),
            self.public_url,
            self.certificates.certificate,
            self.certificates.key,
            self.login_port,
        ).start()
        config = tls.write_private(self.folder / "hydra.yml", yamlio.dump(self._config()).encode())
        tls.write_private(self.folder / "users.json", users_json(self.users).encode())
        log = open(self.log, "ab")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            # Hydra's telemetry would call its vendor's servers: off.
            [str(binary), "serve", "all", "--config", str(config), "--sqa-opt-out"],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.folder)},
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _config(self) -> dict:
        tls_files = {
            "enabled": True,
            "cert": {"path": str(self.certificates.certificate)},
            "key": {"path": str(self.certificates.key)},
        }
        login = self.login.url
        return {
            "dsn": "memory",
            "serve": {
                "public": {"host": "127.0.0.1", "port": self.public_port},
                "admin": {"host": "127.0.0.1", "port": self.admin_port},
                "tls": tls_files,
                "cookies": {"same_site_mode": "Lax"},
            },
            "urls": {
                "self": {"issuer": self.issuer, "public": self.public_url},
                "login": f"{login}/login",
                "consent": f"{login}/consent",
                "logout": f"{login}/logout",
                "error": f"{login}/error",
            },
            "secrets": {"system": [secrets.token_urlsafe(32)]},
            # JWT access tokens with the scopes in one `scope` string, as Check-in issues them.
            "strategies": {"access_token": "jwt", "jwt": {"scope_claim": "string"}},
            "oidc": {
                "subject_identifiers": {"supported_types": ["public"]},
                "dynamic_client_registration": {"enabled": False},
            },
            "webfinger": {
                "oidc_discovery": {
                    "supported_scope": [*SCOPES, "voperson_id"],
                    "supported_claims": ["sub", "name", "preferred_username", "email", "eduperson_entitlement"],
                }
            },
            "ttl": {"access_token": "1h", "id_token": "1h", "refresh_token": "720h", "login_consent_request": "30m"},
            "log": {"level": "info", "format": "json", "leak_sensitive_values": False},
        }

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise PrimageError(f"ORY Hydra exited with status {self.process.returncode}", file=self.log)
            try:
                if requests.get(f"{self.public_url}/health/ready", verify=str(self.ca), timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise PrimageError(f"ORY Hydra did not answer on {self.issuer} within {timeout:.0f} s", file=self.log)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.login:
            self.login.stop()
            self.login = None

    def __enter__(self) -> LocalProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients

    def register_client(
        self,
        client_id: str,
        redirect_uri: str = "http://localhost:8080/callback",
        scopes: tuple[str, ...] = SCOPES,
        lifespan: str | None = None,
    ) -> Client:
        """A confidential client (code flow with refresh tokens), as a site registers at Check-in."""
        secret = secrets.token_urlsafe(24)
        body = {
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": " ".join(scopes),
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if lifespan:
            body["authorization_code_grant_access_token_lifespan"] = lifespan
            body["refresh_token_grant_access_token_lifespan"] = lifespan
        response = requests.post(
            f"{self.admin_url}/admin/clients", json=body, verify=str(self.ca), timeout=REQUEST_TIMEOUT
        )
        if response.status_code != 201:
            raise PrimageError(f"Hydra refused client {client_id} (HTTP {response.status_code}): {response.text[:300]}")
        return Client(client_id, secret, redirect_uri, tuple(scopes))

    def discovery(self) -> dict:
        return self._get(f"{self.issuer}/.well-known/openid-configuration").json()

    def _get(self, url: str, session: requests.Session | None = None, **kwargs) -> requests.Response:
        return (session or requests).get(url, verify=str(self.ca), timeout=REQUEST_TIMEOUT, **kwargs)

    # ------------------------------------------------------------------ the browser flow

    def authorization_code(
        self, client: Client, username: str, password: str | None = None, scopes: tuple[str, ...] | None = None
    ) -> dict:
        """Sign `username` in through the whole flow; the token endpoint's answer (access_token,
        id_token, refresh_token, expires_in...). A wrong password raises PrimageError."""
        user = self.user(username)
        browser = requests.Session()
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "scope": " ".join(scopes or client.scopes),
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
        endpoint = self.discovery()["authorization_endpoint"]
        page = self._follow(browser, f"{endpoint}?{urllib.parse.urlencode(query)}", client)
        challenge = re.search(r'name="login_challenge" value="([^"]+)"', page.text)
        if not challenge:
            raise PrimageError(f"no sign-in form at {page.url} (HTTP {page.status_code})")
        form = {"login_challenge": challenge.group(1), "username": username, "password": password or user.password}
        answer = browser.post(
            f"{self.login.url}/login", data=form, verify=str(self.ca), timeout=REQUEST_TIMEOUT, allow_redirects=False
        )
        if answer.status_code == 401:
            raise PrimageError(f"the test provider refused the password of {username}")
        callback = self._follow(browser, answer.headers["Location"], client)
        returned = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback.url).query))
        if returned.get("state") != state or "code" not in returned:
            raise PrimageError(f"the provider did not return a code: {returned.get('error_description', returned)}")
        return self._token(
            client,
            {
                "grant_type": "authorization_code",
                "code": returned["code"],
                "redirect_uri": client.redirect_uri,
                "code_verifier": verifier,
            },
        )

    def sign_in_at(
        self, browser: requests.Session, url: str, username: str, verify: str, password: str | None = None
    ) -> requests.Response:
        """Open `url` of a service that signs users in here (a hub's login page), sign `username`
        in on the login form when it comes, and follow every redirect as a browser would; the
        last answer (the service's page, or its refusal). `verify`: a CA bundle trusting both."""
        user = self.user(username)

        def follow(response: requests.Response) -> requests.Response:
            for _ in range(MAX_REDIRECTS * 2):
                if response.status_code not in (301, 302, 303, 307, 308):
                    return response
                target = urllib.parse.urljoin(response.url, response.headers["Location"])
                response = browser.get(target, verify=verify, timeout=REQUEST_TIMEOUT, allow_redirects=False)
            raise PrimageError(f"more than {MAX_REDIRECTS * 2} redirects signing in at {url}")

        page = follow(browser.get(url, verify=verify, timeout=REQUEST_TIMEOUT, allow_redirects=False))
        challenge = re.search(r'name="login_challenge" value="([^"]+)"', page.text)
        if not challenge:
            return page  # signed in already, or refused before the provider was asked
        form = {"login_challenge": challenge.group(1), "username": username, "password": password or user.password}
        answer = browser.post(
            f"{self.login.url}/login", data=form, verify=verify, timeout=REQUEST_TIMEOUT, allow_redirects=False
        )
        if answer.status_code == 401:
            raise PrimageError(f"the test provider refused the password of {username}")
        return follow(answer)

    def refresh(self, client: Client, refresh_token: str) -> dict:
        return self._token(client, {"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token(self, client: Client, form: dict) -> dict:
        response = requests.post(
            self.discovery()["token_endpoint"],
            data=form,
            auth=(client.client_id, client.secret),
            verify=str(self.ca),
            timeout=REQUEST_TIMEOUT,
        )
        if not response.ok:
            raise PrimageError(f"the token endpoint refused {form['grant_type']} (HTTP {response.status_code})")
        return response.json()

    def _follow(self, browser: requests.Session, url: str, client: Client) -> _Stop:
        """Follow redirects as a browser would, up to the client's redirect URI (nobody listens there)."""
        for _ in range(MAX_REDIRECTS):
            if url.startswith(client.redirect_uri):
                return _Stop(url, 302, "")
            response = self._get(url, browser, allow_redirects=False)
            if response.status_code not in (301, 302, 303, 307, 308):
                return _Stop(response.url, response.status_code, response.text)
            url = urllib.parse.urljoin(response.url, response.headers["Location"])
        raise PrimageError(f"more than {MAX_REDIRECTS} redirects signing in")


@dataclass
class _Stop:
    url: str
    status_code: int
    text: str


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
