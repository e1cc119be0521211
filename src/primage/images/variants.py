"""Variants: an application image with a variant layer on top (containers/onedata/ makes the
`<application tag>-onedata` image of every image whose image.yml lists `variants: [onedata]`).

What the pipeline adds to a layer's build: the application's exact tag (APP_IMAGE, planned with
the tags) and, read from the application image just built, its own entrypoint, command and user
(APP_ENTRYPOINT, APP_CMD, APP_USER, as shell words): a Dockerfile that sets an ENTRYPOINT loses
the CMD it inherits, so the layer records them for its entrypoint to run.

A layer may install packages from an apt source (its `apt_source` names the build arguments).
A production build uses the Dockerfile's defaults, or the site's `--build-arg` values, and is
`not run` where that source cannot be reached (as a check that cannot run here), never passed.
A test build points the same arguments at a signed flat repository of the layer's stub
packages (built by tests/support/stub_apt_repo.py, as the roles' Molecule scenarios build theirs)
served over HTTP on the Docker bridge's gateway, which build containers reach: the layer's real
apt-source code runs, only the packages are stand-ins. Test builds are tagged
`<variant tag>-test`, labelled org.primage.test-build, tested, and never pushed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import ipaddress
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from .. import engine, paths
from ..errors import PrimageError
from .revision import Planned
from .spec import APP_IMAGE_ARG, Image, Variant, declared_arguments

APPLICATION_ARGS = (APP_IMAGE_ARG, "APP_ENTRYPOINT", "APP_CMD", "APP_USER")
TEST_SUFFIX = "test"
TEST_BUILD_LABEL = "org.primage.test-build"
PROBE_TIMEOUT = 10  # seconds
# stub_apt_repo.py's keys expire after a day: a repository is reused for half of that.
KEY_REUSE_SECONDS = 12 * 3600
# tini's options that take a value (tini -p SIGKILL -- app).
_TINI_VALUED = {"-p", "-e"}


def is_variant(item: Planned) -> bool:
    return isinstance(item.image, Variant)


def without_tini(entrypoint: list[str]) -> list[str]:
    """The application's entrypoint minus a leading tini and its options: the variant runs the
    application under its own tini, as PID 1."""
    if not entrypoint or Path(entrypoint[0]).name not in ("tini", "tini-static"):
        return list(entrypoint)
    rest = list(entrypoint[1:])
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option == "--":
            break
        if option in _TINI_VALUED and rest:
            rest.pop(0)
    return rest


def application_arguments(config: dict) -> dict[str, str]:
    """APP_ENTRYPOINT, APP_CMD and APP_USER from an image's Config (docker inspect)."""
    return {
        "APP_ENTRYPOINT": shlex.join(without_tini(config.get("Entrypoint") or [])),
        "APP_CMD": shlex.join(config.get("Cmd") or []),
        "APP_USER": config.get("User") or "",
    }


def build_arguments(api, item: Planned) -> dict[str, str]:
    """Everything a variant's build receives: the planned APP_IMAGE and what the application image records."""
    application = item.build_args[APP_IMAGE_ARG]
    return {**item.build_args, **application_arguments(api.inspect_image(application)["Config"])}


# --------------------------------------------------------------------------- the apt source


def apt_source(image: Image, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The layer's apt source as a production build gets it: url, suite, ... -> value."""
    layer = image.base.layer if isinstance(image, Variant) else image.layer
    declared = declared_arguments(image.instructions())
    values = {**{name: value or "" for name, value in declared.items()}, **(overrides or {})}
    return {role: values.get(argument, "") for role, argument in layer.apt_source.items()}


def unreachable(source: dict[str, str]) -> str | None:
    """Why the hosts of an apt source do not answer from here, or None when they do (any HTTP
    answer counts: a wrong path fails the build itself, loudly)."""
    seen: set[str] = set()
    for role in ("url", "key_url"):
        url = source.get(role, "")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc in seen:
            continue
        seen.add(parts.netloc)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT):  # noqa: S310
                pass
        except urllib.error.HTTPError:
            continue
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"its apt source {url} cannot be reached from here ({reason})"
    return None


# --------------------------------------------------------------------------- test builds


def bridge_gateway(api) -> str:
    """The host's address on the engine's default bridge, which build containers reach: the
    network's gateway, or the first address of its subnet, where the engine puts it by default."""
    try:
        configs = api.inspect_network("bridge")["IPAM"]["Config"] or []
    except Exception as exc:  # no default bridge network
        raise PrimageError(
            f"the engine has no default bridge network ({exc}): test builds serve their stub repository on it"
        ) from None
    for config in configs:
        if config.get("Gateway"):
            return config["Gateway"]
        if config.get("Subnet") and ipaddress.ip_network(config["Subnet"], strict=False).version == 4:
            return str(ipaddress.ip_network(config["Subnet"], strict=False)[1])
    raise PrimageError("the engine's bridge network has no IPv4 subnet: test builds serve their stub repository on it")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the requests of builds are no news
        pass


def _stub_repository(layer: Image) -> Path:
    """The signed repository of the layer's stub packages, made again only when they changed: its
    key is new each time, and the key's digest is a build argument, so a kept repository keeps
    the test builds' layer cache warm."""
    out = paths.state_dir() / "images" / f"stub-apt-{layer.directory}"
    packages = [paths.root() / package for package in layer.layer.stub_packages]
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(paths.root())}\0{path.stat().st_mode:o}\0".encode())
            digest.update(path.read_bytes())
    stamp = out / ".stub-packages.sha256"
    fresh = stamp.is_file() and time.time() - stamp.stat().st_mtime < KEY_REUSE_SECONDS
    if fresh and stamp.read_text() == digest.hexdigest() and (out / "archive-key.asc").is_file():
        return out
    script = paths.root() / "tests" / "support" / "stub_apt_repo.py"
    made = subprocess.run(
        [sys.executable, str(script), str(out), *map(str, packages)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise PrimageError(
            f"the stub repository of {layer.directory} could not be built: {(made.stderr or made.stdout).strip()}",
            file=layer.spec_file,
        )
    stamp.write_text(digest.hexdigest())
    return out


@contextlib.contextmanager
def stub_repository(api, layer: Image) -> Iterator[dict[str, str]]:
    """Serve a signed flat apt repository of the layer's stub packages to builds; yields the build
    arguments that point the layer's apt source at it."""
    out = _stub_repository(layer)
    gateway = bridge_gateway(api)
    try:
        server = http.server.ThreadingHTTPServer((gateway, 0), functools.partial(_QuietHandler, directory=str(out)))
    except OSError as exc:
        raise PrimageError(
            f"cannot serve the stub repository on the bridge address {gateway}: {exc.strerror}"
        ) from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://{gateway}:{server.server_address[1]}"
    engine.progress(f"{layer.directory}: stub packages served for test builds at {base}")
    values = {
        "url": base,
        "suite": "./",
        "components": "",
        "architectures": "",
        "key_url": f"{base}/archive-key.asc",
        "key_sha256": hashlib.sha256((out / "archive-key.asc").read_bytes()).hexdigest(),
    }
    try:
        yield {argument: values[role] for role, argument in layer.layer.apt_source.items()}
    finally:
        server.shutdown()
        server.server_close()


def as_test_build(item: Planned, stub_arguments: dict[str, str]) -> Planned:
    """The test build of a variant: the same plan, tagged -test, its apt source the stub repository."""
    packages = ", ".join(Path(p).name for p in item.image.base.layer.stub_packages)
    return replace(
        item,
        tag=f"{item.tag}-{TEST_SUFFIX}",
        labels={**item.labels, TEST_BUILD_LABEL: f"stub packages ({packages}); never push"},
        build_args={**item.build_args, **stub_arguments},
        test_build=True,
    )
