"""Single-layer OCI image archives written from files, byte for byte reproducible.

The cluster's own images (the pause sandbox, the FUSE device plugin) are one static binary
each. Writing their archive directly needs neither a registry nor a `FROM scratch` build in
the shared Docker engine, and `ctr images import` (or `docker load`) takes it as it is.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class ImageFile:
    """A file of the image: its path inside, where to read it, its mode."""

    path: str
    source: Path
    mode: int = 0o755


def full_name(name: str) -> str:
    """An image name as containerd stores it: docker.io/library/ for official short names."""
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _layer(files: list[ImageFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders = sorted({parent for f in files for parent in _parents(f.path)})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for item in sorted(files, key=lambda f: f.path):
            _add(tar, item.path.lstrip("/"), item.source.read_bytes(), item.mode)
    return buffer.getvalue()


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def write_archive(target: Path, name: str, files: list[ImageFile], config: dict) -> str:
    """Write an OCI image layout tarball for `name` (a tagged name, e.g. registry.k8s.io/pause:3.10.2).

    `config` is the image's runtime config (Entrypoint, User, ...). Returns the manifest digest.
    """
    layer = _layer(files)
    image_config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": _digest(image_config), "size": len(image_config)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": _digest(layer), "size": len(layer)}],
        },
        sort_keys=True,
    ).encode()
    name = full_name(name)
    tag = name.rsplit(":", 1)[1]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": MANIFEST_TYPE,
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", index)
        for blob in (image_config, manifest, layer):
            _add(tar, f"blobs/sha256/{_digest(blob).split(':', 1)[1]}", blob)
    partial.replace(target)
    return _digest(manifest)
