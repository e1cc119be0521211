"""The login and consent provider of the test OpenID Connect provider: the part EGI Check-in's
identity providers and its attribute release play, for a fixed set of test users.

Hydra hands every sign-in to this small HTTPS server (`urls.login`, `urls.consent`,
`urls.logout`): it shows a username and password form, checks the password against the
test users, accepts the login at Hydra's admin API, and on consent grants the scopes the
client asked for and releases the claims those scopes cover, as Check-in does: `profile`
(name, preferred_username...), `email`, `eduperson_entitlement` (the user's group
memberships as AARC URNs) and `voperson_id`. The claims go into the ID token and the
userinfo answer; the access token carries none of them, so a service reads the groups from
userinfo, as IM does with Check-in's tokens.

It also publishes the provider's discovery document at the issuer URL: Hydra's own, plus the
`introspection_endpoint` Check-in lists and Hydra does not (Hydra serves introspection on its
admin port only). IM 2.0 refuses every token of a provider whose discovery document lacks it:
it reads both userinfo_endpoint and introspection_endpoint before calling either.

Passwords never appear in logs or pages; a wrong one gets the form again with a message.
"""

from __future__ import annotations

import hmac
import html
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from ..errors import PrimageError

# Which claims each scope releases (Check-in's attribute release, for the claims used here).
SCOPE_CLAIMS = {
    "profile": ("name", "given_name", "family_name", "preferred_username"),
    "email": ("email", "email_verified"),
    "eduperson_entitlement": ("eduperson_entitlement",),
    "voperson_id": ("voperson_id",),
}
ADMIN_TIMEOUT = 10


@dataclass(frozen=True)
class TestUser:
    """A user of the test provider. `password` is made for each run: no default credential exists."""

    username: str
    password: str = field(repr=False)
    subject: str  # the stable `sub`, Check-in style: <hex>@egi.eu
    name: str
    email: str
    entitlements: tuple[str, ...]

    def claims(self, scopes: list[str]) -> dict:
        given, _, family = self.name.partition(" ")
        every = {
            "name": self.name,
            "given_name": given,
            "family_name": family,
            "preferred_username": self.username,
            "email": self.email,
            "email_verified": True,
            "eduperson_entitlement": list(self.entitlements),
            "voperson_id": self.subject,
        }
        released = {claim for scope in scopes for claim in SCOPE_CLAIMS.get(scope, ())}
        return {claim: value for claim, value in every.items() if claim in released}


class HydraAdmin:
    """The few calls of Hydra's admin API the login and consent flow makes (TLS verified)."""

    def __init__(self, url: str, ca: Path):
        self.url = url.rstrip("/")
        self.ca = str(ca)

    def _call(self, method: str, path: str, challenge_name: str, challenge: str, body: dict | None = None) -> dict:
        response = requests.request(
            method,
            f"{self.url}/admin/oauth2/auth/requests/{path}",
            params={challenge_name: challenge},
            json=body,
            verify=self.ca,
            timeout=ADMIN_TIMEOUT,
        )
        if not response.ok:
            raise PrimageError(f"Hydra's admin API refused {path} (HTTP {response.status_code}): {response.text[:300]}")
        return response.json()

    def login_request(self, challenge: str) -> dict:
        return self._call("GET", "login", "login_challenge", challenge)

    def accept_login(self, challenge: str, subject: str) -> str:
        body = {"subject": subject, "remember": False}
        return self._call("PUT", "login/accept", "login_challenge", challenge, body)["redirect_to"]

    def consent_request(self, challenge: str) -> dict:
        return self._call("GET", "consent", "consent_challenge", challenge)

    def accept_consent(self, challenge: str, scopes: list[str], audience: list[str], claims: dict) -> str:
        body = {
            "grant_scope": scopes,
            "grant_access_token_audience": audience,
            "remember": False,
            "session": {"id_token": claims},
        }
        return self._call("PUT", "consent/accept", "consent_challenge", challenge, body)["redirect_to"]

    def accept_logout(self, challenge: str) -> str:
        return self._call("PUT", "logout/accept", "logout_challenge", challenge)["redirect_to"]


_FORM = """<!doctype html><html><head><title>PRIMAGE test sign-in</title></head><body>
<h1>Sign in (test identity provider)</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="login_challenge" value="{challenge}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></body></html>"""


class LoginServer:
    """The login, consent and logout pages, on https://127.0.0.1:<port> in a thread of this process."""

    def __init__(
        self, users: list[TestUser], admin: HydraAdmin, hydra_public: str, certificate: Path, key: Path, port: int = 0
    ):
        self.hydra_public = hydra_public.rstrip("/")
        self.users = {user.username: user for user in users}
        self.by_subject = {user.subject: user for user in users}
        self.admin = admin
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="primage-oidc-login", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LoginServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict:
        """Hydra's discovery document, with the introspection endpoint of its admin API added."""
        try:
            response = requests.get(
                f"{self.hydra_public}/.well-known/openid-configuration", verify=self.admin.ca, timeout=ADMIN_TIMEOUT
            )
            response.raise_for_status()
        except requests.RequestException as exc:
            raise PrimageError(f"Hydra's discovery document: {type(exc).__name__}") from None
        return {**response.json(), "introspection_endpoint": f"{self.admin.url}/admin/oauth2/introspect"}

    def check_password(self, username: str, password: str) -> TestUser | None:
        user = self.users.get(username)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            return None
        return user

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # query strings hold challenges: log nothing
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                try:
                    if url.path == "/login":
                        self._login_page(query.get("login_challenge", ""))
                    elif url.path == "/consent":
                        self._consent(query.get("consent_challenge", ""))
                    elif url.path == "/.well-known/openid-configuration":
                        self._json(provider.discovery())
                    elif url.path == "/logout":
                        self._redirect(provider.admin.accept_logout(query.get("logout_challenge", "")))
                    elif url.path == "/error":
                        self._page(400, f"<p>Sign-in failed: {html.escape(query.get('error_description', ''))}</p>")
                    else:
                        self._page(404, "<p>Not found.</p>")
                except PrimageError as exc:
                    self._page(502, f"<p>{html.escape(str(exc))}</p>")

            def do_POST(self) -> None:
                if urllib.parse.urlsplit(self.path).path != "/login":
                    self._page(404, "<p>Not found.</p>")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))
                challenge = form.get("login_challenge", "")
                user = provider.check_password(form.get("username", ""), form.get("password", ""))
                if user is None:
                    self._page(401, _FORM.format(challenge=html.escape(challenge), message=_MESSAGE))
                    return
                try:
                    self._redirect(provider.admin.accept_login(challenge, user.subject))
                except PrimageError as exc:
                    self._page(502, f"<p>{html.escape(str(exc))}</p>")

            def _login_page(self, challenge: str) -> None:
                request = provider.admin.login_request(challenge)
                if request.get("skip"):
                    self._redirect(provider.admin.accept_login(challenge, request["subject"]))
                    return
                self._page(200, _FORM.format(challenge=html.escape(challenge), message=""))

            def _consent(self, challenge: str) -> None:
                request = provider.admin.consent_request(challenge)
                user = provider.by_subject.get(request.get("subject", ""))
                if user is None:
                    self._page(403, "<p>Unknown subject.</p>")
                    return
                scopes = list(request.get("requested_scope") or [])
                audience = list(request.get("requested_access_token_audience") or [])
                self._redirect(provider.admin.accept_consent(challenge, scopes, audience, user.claims(scopes)))

            def _json(self, document: dict) -> None:
                data = json.dumps(document).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _page(self, status: int, body: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


_MESSAGE = "<p role='alert'>Wrong username or password.</p>"


def users_json(users: list[TestUser]) -> str:
    """The users with their passwords, for the private file `primage oidc serve` writes."""
    return json.dumps(
        [
            {"username": u.username, "password": u.password, "sub": u.subject, "eduperson_entitlement": u.entitlements}
            for u in users
        ],
        indent=2,
    )
