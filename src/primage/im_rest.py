"""A client of IM's REST API: the calls `primage deploy`, `infra` and `undeploy` make.

Every request asks for JSON and carries the credentials in the AUTHORIZATION header
(see im_auth). Every failure becomes one clear line: IM not answering (with its URL),
credentials refused, no such infrastructure, IM's own error text trimmed to its useful
line (IM wraps template errors in its server's traceback), or the HTTP status.
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import requests

from . import im_tokens
from .errors import PrimageError, UsageError
from .im_auth import Credentials

CONNECT_TIMEOUT = 15
# A request that only reads is sent again when the connection broke under it: IM's REST server
# (uvicorn) closes an idle keep-alive connection after 5 s, and a request that crosses that moment,
# or one sent while a busy server drops connections, gets "Remote end closed connection without
# response". Requests that change something are never sent twice.
RESENT_METHODS = frozenset({"GET", "HEAD"})
RESEND_ATTEMPTS = 3
RESEND_PAUSE = 0.5
# IM creates and deletes VMs inside the request on some calls (adding workers); give it time.
READ_TIMEOUT = 900

# The prefixes IM's REST layer puts before the error of the call ("Error Creating Inf.: ...").
_IM_WRAPPERS = re.compile(
    r"^(Error (Getting|Creating|Importing|Destroying|Adding|Removing|reconfiguring|modifying|parsing request body)"
    r"[^:]*|Error in \w+ op(eration)?[^:]*): "
)
_TOSCA_PARSER_ERROR = re.compile(r"^\t(\w+(Error|Exception)): (.+)$", re.M)
_LINE = re.compile(r"^Line (\d+): (.*)$", re.S)
MAX_MESSAGE = 500
MAX_PARSER_ERRORS = 2


class IMError(PrimageError):
    """IM refused a request, or answered something unexpected."""

    status: int | None = None  # the HTTP status of IM's answer
    text: str = ""  # IM's own message, trimmed


class IMUnreachable(IMError):
    exit_code = 3


class IMAuthRefused(IMError):
    exit_code = 4


class IMNotFound(IMError):
    exit_code = 5


def useful_text(text: str) -> str:
    """IM's error message without its REST wrappers and its server's traceback."""
    text = (text or "").strip()
    while _IM_WRAPPERS.match(text):
        text = _IM_WRAPPERS.sub("", text, count=1).strip()
    parser_errors = _TOSCA_PARSER_ERROR.findall(text)
    if parser_errors:
        head = text.split("\n", 1)[0].strip().rstrip(":")
        # The first errors are the causes; tosca-parser then lists what they broke further down.
        found = "; ".join(f"{name}: {message.strip()}" for name, _, message in parser_errors[:MAX_PARSER_ERRORS])
        if len(parser_errors) > MAX_PARSER_ERRORS:
            found += f" (and {len(parser_errors) - MAX_PARSER_ERRORS} more)"
        text = f"{head}: {found}" if head and "pre-parsed input" not in head else found
    else:
        text = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def check_url(url: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"'{url}' is not an IM URL (expected http://HOST:PORT or https://HOST:PORT[/PATH])")
    return url.rstrip("/")


@dataclass
class IMClient:
    url: str
    credentials: Credentials

    def __post_init__(self) -> None:
        self.url = check_url(self.url)
        self._session = requests.Session()

    # ------------------------------------------------------------------ transport

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: str | None = None,
        kind: str | None = None,
        params: dict | None = None,
        infrastructure: str | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> requests.Response:
        headers = {"Accept": "application/json", "Authorization": self.credentials.header()}
        if kind:
            headers["Content-Type"] = {"tosca": "text/yaml", "radl": "text/plain"}[kind]
        try:
            response = self._send(method, path, headers, params, body, read_timeout)
        except requests.exceptions.SSLError as exc:
            raise IMUnreachable(
                f"IM at {self.url}: TLS verification failed ({_reason(exc)}); if the site has its own certificate "
                "authority, set REQUESTS_CA_BUNDLE to its PEM file"
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise IMUnreachable(
                f"IM at {self.url} is not answering (no connection within {CONNECT_TIMEOUT} s); check the URL "
                "(--im or PRIMAGE_IM_URL) and that the server is running"
            ) from None
        except requests.exceptions.ReadTimeout:
            raise IMError(f"IM at {self.url} took more than {read_timeout:g} s to answer {what}") from None
        except requests.exceptions.ConnectionError as exc:
            raise IMUnreachable(
                f"IM at {self.url} is not answering ({_reason(exc)}); check the URL (--im or PRIMAGE_IM_URL) "
                "and that the server is running"
            ) from None
        except requests.exceptions.InvalidHeader:
            # requests quotes the header in its message: never let it reach the terminal.
            raise PrimageError(
                "the IM auth file holds a character that cannot go in an HTTP header", file=self.credentials.source
            ) from None
        except requests.RequestException as exc:
            raise IMError(f"IM at {self.url}: {what} failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise self._error(response, what, infrastructure)
        return response

    def _send(
        self, method: str, path: str, headers: dict, params: dict | None, body: str | None, read_timeout: float
    ) -> requests.Response:
        """One HTTP exchange; a request that only reads is sent again if its connection broke."""

        def exchange() -> requests.Response:
            return self._session.request(
                method,
                f"{self.url}{path}",
                headers=headers,
                params=params,
                data=body.encode("utf-8") if body is not None else None,
                timeout=(CONNECT_TIMEOUT, read_timeout),
            )

        if method in RESENT_METHODS:
            for attempt in range(1, RESEND_ATTEMPTS):
                try:
                    return exchange()
                except requests.exceptions.ConnectionError as exc:
                    if not _connection_broke(exc):
                        raise
                    time.sleep(RESEND_PAUSE * attempt)
        return exchange()  # the last attempt, or the only one: its failure is the caller's to report

    def _error(self, response: requests.Response, what: str, infrastructure: str | None) -> IMError:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "message" not in answer:
            error = IMError(
                f"{self.url} answered HTTP {response.status_code} {response.reason} to {what}, and not with IM's "
                "JSON: is it an IM REST endpoint?"
            )
        else:
            error = self._im_error(response.status_code, str(answer["message"]), what, infrastructure)
            error.text = useful_text(str(answer["message"]))
        error.status = response.status_code
        return error

    def _im_error(self, status: int, message: str, what: str, infrastructure: str | None) -> IMError:
        text = useful_text(message)
        auth = self.credentials.source
        if status == 401 and self.credentials.uses_token():
            return IMAuthRefused(self._token_refused(text))
        if status == 401:
            return IMAuthRefused(
                f"IM at {self.url} refused the credentials of {auth}: {text} (check the username and password "
                "of its InfrastructureManager line)"
            )
        if status == 403 and "not granted" in text:
            return IMAuthRefused(
                f"IM at {self.url}: infrastructure {infrastructure} belongs to other credentials than those of {auth}"
            )
        if status == 404 and infrastructure and "VM" not in text:
            return IMNotFound(f"IM at {self.url} has no infrastructure {infrastructure} ({text})")
        return IMError(f"IM at {self.url} refused {what} (HTTP {status}): {text}")

    def _token_refused(self, text: str) -> str:
        """IM's reason for refusing an OpenID Connect access token, with what to do about it."""
        token = self.credentials.im_token()
        head = f"IM at {self.url} refused the access token of {self.credentials.source}"
        reason = text.replace("Invalid InfrastructureManager credentials. ", "")
        if "Token expired" in text:
            renew = token.renew if token else "get a fresh one"
            return f"{head}: it has expired; {renew}"
        if "not in configured groups" in text:
            return (
                f"{head}: its user is not in the group this IM requires (its OIDC_GROUPS; for PRIMAGE, membership "
                "of the PRIMAGE_Project group at EGI Check-in: ask the group's managers to add you)"
            )
        if "Issuer not accepted" in text:
            issuer = im_tokens.claim(token.current(), "iss") if token else None
            return (
                f"{head}: IM does not accept tokens of issuer {issuer or '(none named)'} (its OIDC_ISSUERS); get the "
                "token from the issuer IM trusts (EGI Check-in)"
            )
        userinfo = re.search(r"Code: (\d+)\. Message: (.*?)\.*$", reason)
        if userinfo:
            return (
                f"{head}: its issuer's userinfo endpoint refused it (HTTP {userinfo.group(1)}: "
                f"{_description(userinfo.group(2))}): a forged or revoked token, or one meant for another service"
            )
        return f"{head}: {reason}"

    def _json(self, response: requests.Response, key: str, what: str):
        try:
            return response.json()[key]
        except (ValueError, KeyError, TypeError):
            raise IMError(f"{self.url} answered {what} without IM's '{key}': is it an IM REST endpoint?") from None

    # ------------------------------------------------------------------ calls

    def version(self) -> str:
        return str(self._json(self._request("GET", "/version", "the version request"), "version", "/version"))

    def infrastructures(self) -> list[str]:
        answer = self._json(self._request("GET", "/infrastructures", "the list"), "uri-list", "the list")
        return [_last(item["uri"]) for item in answer]

    def create(self, body: str, kind: str, source: str) -> str:
        """Submit a TOSCA or RADL document; IM creates the VMs in the background (async).
        A document IM refuses is reported against its file (and line, which IM gives for RADL)."""
        try:
            response = self._request(
                "POST", "/infrastructures", f"the {kind.upper()} document", body=body, kind=kind, params={"async": "1"}
            )
        except IMError as exc:
            if exc.status != 400:
                raise
            line = _LINE.match(exc.text)
            refused = IMError(
                f"IM at {self.url} refused it: {line.group(2) if line else exc.text}",
                file=source,
                line=int(line.group(1)) if line else None,
            )
            refused.status, refused.text = exc.status, exc.text
            raise refused from None
        return response.headers.get("InfID") or _last(self._json(response, "uri", "the creation"))

    def _property(self, infrastructure: str, name: str):
        what = f"the {name} of infrastructure {infrastructure}"
        response = self._request(
            "GET", f"/infrastructures/{infrastructure}/{name}", what, infrastructure=infrastructure
        )
        return self._json(response, name, what)

    def state(self, infrastructure: str) -> dict:
        """{'state': aggregated state, 'vm_states': {vm id: state}}."""
        return self._property(infrastructure, "state")

    def contmsg(self, infrastructure: str) -> str:
        return self._property(infrastructure, "contmsg") or ""

    def radl(self, infrastructure: str) -> str:
        return self._property(infrastructure, "radl")

    def optional_property(self, infrastructure: str, name: str):
        """`tosca` and `outputs`, which IM has only for infrastructures created from TOSCA (else None)."""
        try:
            return self._property(infrastructure, name)
        except IMError as exc:
            if exc.status == 403 and "not valid in this infrastructure" in str(exc):
                return None
            raise

    def vms(self, infrastructure: str) -> list[str]:
        what = f"the VMs of infrastructure {infrastructure}"
        response = self._request("GET", f"/infrastructures/{infrastructure}", what, infrastructure=infrastructure)
        return [_last(item["uri"]) for item in self._json(response, "uri-list", what)]

    def vm_info(self, infrastructure: str, vm: str) -> list[dict]:
        """The VM's RADL as IM's JSON list of networks and its system."""
        what = f"VM {vm} of infrastructure {infrastructure}"
        response = self._request(
            "GET", f"/infrastructures/{infrastructure}/vms/{vm}", what, infrastructure=infrastructure
        )
        return self._json(response, "radl", what)

    def add(self, infrastructure: str, body: str, kind: str, context: bool = True) -> list[str]:
        """POST a document to the infrastructure: IM adds what it deploys (a TOSCA document with a
        changed count also removes VMs). Returns the new VM ids."""
        what = f"the update of infrastructure {infrastructure}"
        response = self._request(
            "POST",
            f"/infrastructures/{infrastructure}",
            what,
            body=body,
            kind=kind,
            params=None if context else {"context": "0"},
            infrastructure=infrastructure,
        )
        return [_last(item["uri"]) for item in self._json(response, "uri-list", what)]

    def remove_vms(self, infrastructure: str, vms: list[str]) -> None:
        self._request(
            "DELETE",
            f"/infrastructures/{infrastructure}/vms/{','.join(vms)}",
            f"the removal of VMs {', '.join(vms)} of infrastructure {infrastructure}",
            infrastructure=infrastructure,
        )

    def reconfigure(self, infrastructure: str) -> None:
        self._request(
            "PUT",
            f"/infrastructures/{infrastructure}/reconfigure",
            f"the reconfiguration of infrastructure {infrastructure}",
            infrastructure=infrastructure,
        )

    def destroy(
        self, infrastructure: str, background: bool = False, force: bool = False, timeout: float = READ_TIMEOUT
    ) -> None:
        """Delete every VM and the infrastructure: within the request (im_client's way), or in IM's
        background. `force` drops it from IM even where a VM cannot be deleted (already gone)."""
        params = {key: "1" for key, wanted in (("async", background), ("force", force)) if wanted}
        self._request(
            "DELETE",
            f"/infrastructures/{infrastructure}",
            f"the deletion of infrastructure {infrastructure}",
            params=params or None,
            infrastructure=infrastructure,
            read_timeout=timeout,
        )


def _description(answer: str) -> str:
    """An OAuth error answer's description (`{"error": ..., "error_description": ...}`), else the text."""
    try:
        data = json.loads(answer)
    except ValueError:
        return answer[:200]
    return str(data.get("error_description") or data.get("error") or answer)[:200] if isinstance(data, dict) else answer


def _last(uri: str) -> str:
    return posixpath.basename(urlparse(uri).path.rstrip("/"))


def _connection_broke(exc: requests.exceptions.ConnectionError) -> bool:
    """The server took the connection and closed or reset it (not: refused, unknown host, timeout, TLS)."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    return _reason(exc) == BROKEN_CONNECTION


BROKEN_CONNECTION = "the server closed the connection"


def _reason(exc: Exception) -> str:
    """The root cause of a requests failure, in a few words (connection refused, name unknown)."""
    text = str(exc)
    for pattern, reason in (
        (r"Connection refused", "connection refused"),
        (r"RemoteDisconnected|Remote end closed|Connection reset|Connection aborted|BrokenPipe", BROKEN_CONNECTION),
        (
            r"Name or service not known|nodename nor servname|getaddrinfo failed|Temporary failure in name",
            "unknown host name",
        ),
        (r"No route to host", "no route to host"),
        (r"Network is unreachable", "network unreachable"),
        (r"timed out", "timed out"),
        (r"CERTIFICATE_VERIFY_FAILED[^)'\"]*", None),
    ):
        match = re.search(pattern, text)
        if match:
            return reason or match.group(0)
    return type(exc).__name__
