"""`primage images push`: the built images to a registry over verified TLS, each checked by digest.

Credentials: the password comes from a file only its owner can read, or standard input; it is
handed to the engine per call (the SDK's auth_config) and never written to ~/.docker/config.json,
never printed. The engine checks it first (its login endpoint), so a wrong password pushes
nothing. An image counts as pushed only when the registry serves the digest the push reported.

The engine treats registries in 127.0.0.0/8 as insecure and would skip certificate checks
there; primage verifies the registry's certificate itself first, against the system store plus
/etc/docker/certs.d/<host:port>/*.crt (where the engine looks for a registry's CA), so
credentials never go to a registry whose certificate nobody checked.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import ssl
import stat
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import engine
from ..errors import PrimageError, UsageError
from . import variants
from .build import client
from .revision import Planned

CERTS_DIR = Path("/etc/docker/certs.d")
STDIN = "-"  # --password-file - reads standard input
PUSHED, FAILED, NOT_RUN = "pushed", "FAIL", "not run"
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$")


@dataclass(frozen=True)
class Registry:
    host: str  # host[:port], as the engine names it
    prefix: str  # repository path prefix, e.g. group/project (GitLab), or ""

    def remote(self, item: Planned) -> str:
        path = f"{self.prefix}/{item.image.name}" if self.prefix else item.image.name
        return f"{self.host}/{path}"

    @property
    def certs_dir(self) -> Path:
        return CERTS_DIR / self.host


def parse_registry(url: str) -> Registry:
    """`host[:port][/prefix]`, optionally with https://; plain http is refused."""
    text = url.strip().rstrip("/")
    if text.startswith("http://"):
        raise UsageError(f"--registry {url}: plain http is refused; the pipeline pushes over TLS only (https://)")
    text = text.removeprefix("https://")
    host, _, prefix = text.partition("/")
    if not host or not _HOST.match(host):
        raise UsageError(f"--registry {url}: expected host[:port][/path], e.g. registry.example.eu:5000")
    if prefix and not re.fullmatch(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", prefix):
        raise UsageError(f"--registry {url}: the path '{prefix}' is not a repository path (lower case, '/', '-', '.')")
    return Registry(host, prefix)


def read_password(password_file: str) -> str:
    """The password from a file only its owner may read, or from standard input ('-')."""
    if password_file == STDIN:
        if sys.stdin is None:
            raise UsageError("--password-file -: no standard input to read the password from")
        password = getpass.getpass("registry password: ") if sys.stdin.isatty() else sys.stdin.read()
    else:
        path = Path(password_file)
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise UsageError(f"--password-file {password_file}: cannot read it ({exc.strerror})") from None
        if not stat.S_ISREG(mode):
            raise UsageError(f"--password-file {password_file}: not a regular file")
        if mode & 0o077:
            raise UsageError(
                f"--password-file {password_file}: mode {stat.S_IMODE(mode):04o} lets others read it; "
                f"run `chmod 600 {password_file}` (owner only)"
            )
        password = path.read_text(encoding="utf-8")
    password = password.rstrip("\r\n")
    if not password:
        raise UsageError("the registry password is empty")
    return password


def tls_context(registry: Registry) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if registry.certs_dir.is_dir():
        for ca in sorted(registry.certs_dir.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
    return context


def check_tls(registry: Registry) -> None:
    """The registry answers the Docker registry API over a certificate the machine trusts."""
    url = f"https://{registry.host}/v2/"
    handler = urllib.request.HTTPSHandler(context=tls_context(registry))
    try:
        urllib.request.build_opener(handler).open(url, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise PrimageError(f"{url} answered HTTP {exc.code}: is this a container registry?") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise PrimageError(
                f"the certificate of {url} is not trusted ({reason.verify_message}); put the registry's CA "
                f"certificate in {registry.certs_dir}/ca.crt (the engine reads it there too)"
            ) from None
        raise PrimageError(f"cannot reach the registry at {url}: {reason}") from None


def login(api, registry: Registry, username: str | None, password: str | None) -> dict | None:
    """The auth_config for every call, after the engine confirmed it with the registry."""
    import docker

    if username is None:
        return None
    try:
        api.login(username=username, password=password, registry=registry.host, reauth=True)
    except docker.errors.APIError as exc:
        message = str(exc.explanation or exc)
        if "unauthorized" in message.lower() or "401" in message or "incorrect" in message.lower():
            raise PrimageError(
                f"the registry {registry.host} refused the credentials of user '{username}' "
                "(wrong username or password); nothing was pushed"
            ) from None
        raise PrimageError(f"login to {registry.host} failed: {message}; nothing was pushed") from None
    return {"username": username, "password": password}


@dataclass
class PushResult:
    planned: Planned
    status: str
    remote: str = ""
    digest: str = ""
    size: int | None = None
    seconds: float = 0.0
    reason: str = ""

    @property
    def result(self) -> str:
        return self.status

    def as_dict(self) -> dict:
        return {
            "image": self.planned.image.directory,
            "reference": self.planned.reference,
            "remote": self.remote,
            "status": self.status,
            "digest": self.digest,
            "seconds": round(self.seconds, 1),
            "reason": self.reason,
        }


def push_all(
    planned: list[Planned], registry: Registry, username: str | None, password: str | None
) -> list[PushResult]:
    """Push every planned image; nothing is pushed when one is missing, or is a test build. A
    variant not built because its apt source cannot be reached from here is `not run`."""
    api = client()
    tests = [item.reference for item in planned if item.test_build or _is_test_build(api, item.reference)]
    if tests:
        raise PrimageError(f"test builds (stub packages) are never pushed: {', '.join(tests)}; nothing was pushed")
    unreachable = {}
    missing = []
    for item in planned:
        if _present(api, item.reference):
            continue
        why = (
            variants.is_variant(item)
            and item.image.base.layer.apt_source
            and variants.unreachable(variants.apt_source(item.image))
        )
        if why:
            unreachable[item.image.directory] = f"not built here: {why}"
        else:
            missing.append(item.reference)
    if missing:
        raise PrimageError(f"not built at this revision: {', '.join(missing)}; run `primage images build` first")
    check_tls(registry)
    auth = login(api, registry, username, password)
    engine.progress(f"registry {registry.host}: TLS verified" + (f", logged in as {username}" if username else ""))
    results = []
    for item in planned:
        if item.image.directory in unreachable:
            engine.progress(f"{item.image.directory}: not pushed: {unreachable[item.image.directory]}")
            results.append(
                PushResult(
                    item, NOT_RUN, f"{registry.remote(item)}:{item.tag}", reason=unreachable[item.image.directory]
                )
            )
            continue
        results.append(push_one(api, item, registry, auth))
    return results


def _is_test_build(api, reference: str) -> bool:
    import docker

    try:
        labels = api.inspect_image(reference)["Config"].get("Labels") or {}
    except docker.errors.ImageNotFound:
        return False
    return variants.TEST_BUILD_LABEL in labels


def _present(api, reference: str) -> bool:
    import docker

    try:
        api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def push_one(api, item: Planned, registry: Registry, auth: dict | None) -> PushResult:
    import docker

    directory = item.image.directory
    remote = registry.remote(item)
    result = PushResult(item, FAILED, f"{remote}:{item.tag}", size=api.inspect_image(item.reference)["Size"])
    engine.progress(f"{directory}: pushing {result.remote}")
    start = time.monotonic()
    api.tag(item.reference, remote, item.tag)
    pushed_digest, error = "", ""
    try:
        for message in api.push(remote, tag=item.tag, stream=True, decode=True, auth_config=auth):
            if "error" in message:
                error = (message.get("errorDetail") or {}).get("message") or message["error"]
            elif message.get("status") in ("Pushed", "Layer already exists", "Mounted from"):
                engine.progress(f"{directory}: layer {message.get('id', '?')}: {message['status'].lower()}")
            pushed_digest = (message.get("aux") or {}).get("Digest", pushed_digest)
        if not error and pushed_digest:
            served = api.inspect_distribution(result.remote, auth_config=auth)["Descriptor"]["digest"]
            if served != pushed_digest:
                error = f"the registry serves {served}, not the pushed {pushed_digest}"
    except docker.errors.APIError as exc:
        error = str(exc.explanation or exc)
    finally:
        with contextlib.suppress(docker.errors.APIError):  # only the registry-named tag; the image stays
            api.remove_image(result.remote, noprune=True)
    result.seconds = time.monotonic() - start
    if error or not pushed_digest:
        result.reason = error or "the engine reported no digest"
        engine.progress(f"{directory}: FAILED: {result.reason}")
        return result
    result.status, result.digest = PUSHED, pushed_digest
    engine.progress(f"{directory}: pushed {result.remote}@{pushed_digest} (digest verified in the registry)")
    return result
