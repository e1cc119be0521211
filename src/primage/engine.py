"""The container engine the harness runs on: a local Docker daemon and bootstrapped base images.

No registry is reachable where this project is built, so base images are made with
debootstrap from the distribution archive and tagged with their upstream names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, yamlio
from .errors import PrimageError

RECIPE_LABEL = "org.primage.base-image.recipe"
DEBIAN_CA_DIR = Path("/usr/share/ca-certificates")
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- daemon


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


def ensure_docker(timeout: float = 60.0) -> None:
    """Start dockerd in the background when no engine answers, and wait for its socket."""
    if docker_answers():
        return
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise PrimageError(
            "no Docker engine answers and dockerd is not installed; "
            "install Debian's docker.io package (scripts/setup.sh does)"
        )
    log = paths.cache_dir() / "dockerd.log"
    progress(f"starting dockerd (log: {paths.relative(log)})")
    with open(log, "ab") as out:
        subprocess.Popen(
            [dockerd], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if docker_answers():
            return
        time.sleep(1)
    raise PrimageError(f"dockerd did not answer within {timeout:.0f} s; see its log", file=log)


def image_labels(tag: str) -> dict[str, str] | None:
    """Labels of a local image, or None when the image is not present."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    return json.loads(result.stdout or "null") or {}


def image_present(tag: str) -> bool:
    return image_labels(tag) is not None


# --------------------------------------------------------------------------- CA bundle


def _pems(text: str) -> list[str]:
    return [match.group(0) for match in _PEM.finditer(text)]


def _normalised(pem: str) -> str:
    return "".join(pem.split())


def extra_ca_certificates() -> list[str]:
    """The extra CA bundle, as PEM blocks.

    $PRIMAGE_EXTRA_CA_BUNDLE names a PEM file (or `none`). Without it, the extra
    certificates are those the machine trusts beyond Debian's own ca-certificates:
    the ones an intercepting proxy (hospital, university, CI sandbox) needs.
    """
    setting = os.environ.get("PRIMAGE_EXTRA_CA_BUNDLE", "").strip()
    if setting.lower() == "none":
        return []
    if setting:
        bundle = Path(setting)
        if not bundle.is_file():
            raise PrimageError("PRIMAGE_EXTRA_CA_BUNDLE names no readable file (expected a PEM bundle)", file=bundle)
        pems = _pems(bundle.read_text(encoding="utf-8", errors="replace"))
        if not pems:
            raise PrimageError("no PEM certificate in the extra CA bundle", file=bundle)
        return pems
    if not SYSTEM_CA_BUNDLE.is_file():
        return []
    shipped = {
        _normalised(pem)
        for crt in DEBIAN_CA_DIR.rglob("*.crt")
        for pem in _pems(crt.read_text(encoding="utf-8", errors="replace"))
    }
    system = _pems(SYSTEM_CA_BUNDLE.read_text(encoding="utf-8", errors="replace"))
    return [pem for pem in system if _normalised(pem) not in shipped]


# --------------------------------------------------------------------------- base images


@dataclass
class BaseImage:
    tag: str
    suite: str
    mirror: str
    keyring: str
    components: list[str] = field(default_factory=lambda: ["main"])
    default: bool = True
    packages: list[str] = field(default_factory=list)
    # "platform": a Molecule platform of the roles (systemd, Ansible's needs);
    # "application": a slim foundation the project's own Dockerfiles build on.
    purpose: str = "platform"

    def recipe_hash(self, extra_cas: list[str]) -> str:
        recipe = json.dumps(
            [
                self.tag,
                self.suite,
                self.mirror,
                self.components,
                sorted(self.packages),
                sorted(_normalised(pem) for pem in extra_cas),
            ]
        )
        return hashlib.sha256(recipe.encode()).hexdigest()[:16]

    def buildable(self) -> str | None:
        """Why this image cannot be bootstrapped here, or None when it can."""
        if not shutil.which("debootstrap"):
            return "debootstrap is not installed (scripts/setup.sh installs it)"
        if not Path(self.keyring).is_file():
            return f"the archive keyring {self.keyring} is not installed"
        return None


PURPOSES = ("platform", "application")


def base_images_file() -> Path:
    return paths.containers_dir() / "base" / "images.yml"


def base_images() -> list[BaseImage]:
    spec_file = base_images_file()
    data, lines = yamlio.load_file(spec_file)
    packages = data.get("packages") or []
    images = []
    for index, entry in enumerate(data.get("images") or []):
        missing = [key for key in ("tag", "suite", "mirror", "keyring") if key not in entry]
        if missing:
            raise PrimageError(
                f"base image entry lacks {', '.join(missing)}",
                file=paths.relative(spec_file),
                line=lines.line_of("images", index),
            )
        entry = dict(entry)
        if entry.get("purpose", "platform") not in PURPOSES:
            raise PrimageError(
                f"base image purpose must be one of {', '.join(PURPOSES)}, got '{entry['purpose']}'",
                file=paths.relative(spec_file),
                line=lines.line_of("images", index, "purpose"),
            )
        # An image may list its own packages; the top-level list is the platforms' default.
        entry["packages"] = list(entry.get("packages") or packages)
        images.append(BaseImage(**entry))
    return images


def find_base_image(tag: str) -> BaseImage:
    for image in base_images():
        if image.tag == tag:
            return image
    known = ", ".join(image.tag for image in base_images())
    raise PrimageError(f"no base image '{tag}' is declared (known: {known})", file=paths.relative(base_images_file()))


def _run(command: list[str], log: Path, what: str) -> None:
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise PrimageError(f"{what} failed (exit {result.returncode}): " + " | ".join(tail), file=log)


def build_base_image(image: BaseImage, force: bool = False) -> str:
    """Bootstrap `image` unless an image from the same recipe exists. Returns what was done."""
    extra_cas = extra_ca_certificates()
    recipe = image.recipe_hash(extra_cas)
    labels = image_labels(image.tag)
    if not force and labels is not None and labels.get(RECIPE_LABEL) == recipe:
        return "up to date"
    reason = image.buildable()
    if reason:
        raise PrimageError(f"cannot bootstrap {image.tag}: {reason}")
    work = paths.cache_dir() / "base-images"
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{image.tag.replace('/', '_').replace(':', '-')}.log"  # tags may hold a repository path
    log.write_text("")
    rootfs = Path(tempfile.mkdtemp(prefix=f"{image.suite}-", dir=work))
    try:
        progress(
            f"{image.tag}: debootstrap {image.suite} from {image.mirror} (about 2 min; log: {paths.relative(log)})"
        )
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--keyring={image.keyring}",
                f"--components={','.join(image.components)}",
                f"--include={','.join(image.packages)}",
                image.suite,
                str(rootfs),
                image.mirror,
            ],
            log,
            f"debootstrap of {image.tag}",
        )
        _add_extra_cas(rootfs, extra_cas, log)
        _trim(rootfs)
        progress(f"{image.tag}: importing into Docker")
        _import(rootfs, image.tag, recipe, log)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return "built"


def _add_extra_cas(rootfs: Path, extra_cas: list[str], log: Path) -> None:
    if not extra_cas:
        return
    target = rootfs / "usr/local/share/ca-certificates/primage-extra.crt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(extra_cas) + "\n")
    _run(["chroot", str(rootfs), "update-ca-certificates"], log, "update-ca-certificates in the rootfs")


def _trim(rootfs: Path) -> None:
    """Drop caches; keep the image small and make apt refresh its lists on first use."""
    for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
        target = rootfs / folder
        for entry in target.glob("*"):
            if entry.is_file():
                entry.unlink()
        (target / "partial").mkdir(parents=True, exist_ok=True)
    # An mtime of "now" on the empty lists folder makes Ansible's apt cache_valid_time
    # believe the cache is fresh, and installs then fail to find packages.
    lists = rootfs / "var/lib/apt/lists"
    os.utime(lists, (0, 0))
    # An empty machine-id makes systemd generate one per container instead of sharing one.
    (rootfs / "etc/machine-id").write_text("")


def _import(rootfs: Path, tag: str, recipe: str, log: Path) -> None:
    with open(log, "ab") as out:
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE, stderr=out
        )
        imported = subprocess.run(
            [
                "docker",
                "import",
                "--change",
                f"LABEL {RECIPE_LABEL}={recipe}",
                "--change",
                'CMD ["/bin/bash"]',
                "-",
                tag,
            ],
            stdin=tar.stdout,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
        tar.stdout.close()
        tar_status = tar.wait()
    if tar_status != 0 or imported.returncode != 0:
        raise PrimageError(
            f"docker import of {tag} failed (tar exit {tar_status}, import exit {imported.returncode})",
            file=log,
        )


def ensure_base_images(tags: list[str] | None = None, force: bool = False) -> dict[str, str]:
    """Build the named base images (default: those marked default). Returns tag -> outcome."""
    ensure_docker()
    wanted = [find_base_image(tag) for tag in tags] if tags else [i for i in base_images() if i.default]
    outcomes = {}
    for image in wanted:
        outcomes[image.tag] = build_base_image(image, force=force)
        progress(f"{image.tag}: {outcomes[image.tag]}")
    return outcomes


def build_folder_image(folder: Path, name: str) -> str:
    """`docker build` a folder into `name:<content hash>` unless that image exists (no registry)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    tag = f"{name}:{digest.hexdigest()[:12]}"
    if image_present(tag):
        return tag
    progress(f"building {tag} from {paths.relative(folder)}")
    result = subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(folder)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PrimageError(f"docker build of {tag} failed: {result.stderr.strip()[-800:]}", file=folder / "Dockerfile")
    return tag
