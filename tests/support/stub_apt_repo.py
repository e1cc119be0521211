#!/usr/bin/env python3
"""Build a signed, flat apt repository of stub packages for Molecule scenarios.

Some roles install software from vendor archives this project's CI cannot reach
(pkgs.k8s.io, packages.onedata.org). Their install code still has to run for real:
the scenario points the role's mirror settings at a repository made here, whose
packages carry small stand-ins for the real programs. The repository is signed with
a throwaway key, so the role's `signed-by` handling is exercised as it is in production.

Usage:
    stub_apt_repo.py OUT_DIR PACKAGE_DIR [PACKAGE_DIR ...]

Each PACKAGE_DIR holds a `package.yml` (name, version, description, optional depends
and architecture) and a `root/` folder laid out as the installed file system
(e.g. `root/usr/bin/kubeadm`). OUT_DIR receives the .deb files, `Packages`, a signed
`InRelease`/`Release.gpg`, and the public key as `archive-key.asc` (armored) and
`archive-key.gpg` (binary keyring), i.e. a repository usable as:

    deb [signed-by=OUT_DIR/archive-key.gpg] file://OUT_DIR ./
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

STUB_NOTE = "Test stub for Molecule scenarios of primage-platform; not the real program."


def _control(meta: dict) -> str:
    lines = [
        f"Package: {meta['name']}",
        f"Version: {meta['version']}",
        f"Architecture: {meta.get('architecture', 'all')}",
        "Maintainer: primage-platform tests <tests@primage.invalid>",
    ]
    if meta.get("depends"):
        lines.append(f"Depends: {', '.join(meta['depends'])}")
    lines.append(f"Description: {meta.get('description', meta['name'])}")
    lines.append(f" {STUB_NOTE}")
    return "\n".join(lines) + "\n"


def build_deb(package_dir: Path, pool: Path) -> Path:
    meta = yaml.safe_load((package_dir / "package.yml").read_text())
    for key in ("name", "version"):
        if key not in meta:
            sys.exit(f"{package_dir / 'package.yml'}: missing '{key}'")
    with tempfile.TemporaryDirectory() as staging:
        tree = Path(staging) / "tree"
        if (package_dir / "root").is_dir():
            shutil.copytree(package_dir / "root", tree, symlinks=True)
        else:
            tree.mkdir()
        (tree / "DEBIAN").mkdir(exist_ok=True)
        (tree / "DEBIAN" / "control").write_text(_control(meta))
        deb = pool / f"{meta['name']}_{meta['version']}_{meta.get('architecture', 'all')}.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return deb


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], check=True, capture_output=True, text=True).stdout.strip()


def packages_index(out: Path, debs: list[Path]) -> str:
    stanzas = []
    for deb in debs:
        control = subprocess.run(
            ["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True
        ).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append(
            "\n".join(
                [
                    control,
                    f"Filename: ./{deb.relative_to(out)}",
                    f"Size: {len(data)}",
                    f"SHA256: {hashlib.sha256(data).hexdigest()}",
                ]
            )
        )
    return "\n\n".join(stanzas) + "\n"


def release_file(out: Path, indexes: list[Path]) -> str:
    lines = [
        "Origin: primage-platform tests",
        "Label: stub",
        "Suite: stub",
        "Codename: stub",
        "Date: Thu, 01 Jan 2026 00:00:00 UTC",
        "SHA256:",
    ]
    for index in indexes:
        data = index.read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {index.name}")
    return "\n".join(lines) + "\n"


def sign(out: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="stub-apt-gnupg-"))
    home.chmod(0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        subprocess.run(
            [*gpg, "--quick-gen-key", "primage stub archive <stub@primage.invalid>", "ed25519", "sign", "1d"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*gpg, "--yes", "--clearsign", "-o", str(out / "InRelease"), str(out / "Release")],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*gpg, "--yes", "-abs", "-o", str(out / "Release.gpg"), str(out / "Release")],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*gpg, "--yes", "--armor", "--export", "-o", str(out / "archive-key.asc")],
            check=True,
            capture_output=True,
        )
        subprocess.run([*gpg, "--yes", "--export", "-o", str(out / "archive-key.gpg")], check=True, capture_output=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def build(out: Path, package_dirs: list[Path]) -> None:
    if out.exists():
        shutil.rmtree(out)
    pool = out / "pool"
    pool.mkdir(parents=True)
    debs = [build_deb(package_dir, pool) for package_dir in package_dirs]
    text = packages_index(out, debs)
    (out / "Packages").write_text(text)
    with gzip.open(out / "Packages.gz", "wt") as packed:
        packed.write(text)
    (out / "Release").write_text(release_file(out, [out / "Packages", out / "Packages.gz"]))
    sign(out)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, *package_dirs = (Path(arg) for arg in argv)
    missing = [str(p) for p in package_dirs if not (p / "package.yml").is_file()]
    if missing:
        print(f"no package.yml in: {', '.join(missing)}", file=sys.stderr)
        return 2
    build(out.resolve(), package_dirs)
    print(f"deb [signed-by={out.resolve()}/archive-key.gpg] file://{out.resolve()} ./")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
