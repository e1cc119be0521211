"""Shared fixtures for the registry scenario.

The instance doubles as the client: skopeo, curl and openssl run inside it. Secrets reach it on
standard input (``docker exec -i``), never on a command line, so that the tests themselves do
not put the password where test_secrets.py looks for it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
ROLE = SCENARIO.parents[1]
CLIENT = "/root/registry-client"
IMAGE_REPO = "primage/tiny"
IMAGE_TAG = "v1"


def _load(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def role_vars() -> dict:
    """Role defaults overlaid with the converge play's vars: what the role was run with."""
    values = dict(_load(ROLE / "defaults" / "main.yml"))
    values.update(_load(SCENARIO / "converge.yml")[0].get("vars", {}))
    values["registry_port"] = str(values["registry_port"])
    return values


@pytest.fixture(scope="session")
def user(role_vars) -> dict:
    return role_vars["registry_users"][0]


@pytest.fixture(scope="module")
def container(host) -> str:
    return host.backend.name


def refused(stderr: str) -> bool:
    """Whether a skopeo error is the registry refusing access (wording differs across versions)."""
    text = stderr.lower()
    return any(word in text for word in ("unauthorized", "authentication required", "401"))


def ownership(host, path: str) -> tuple[str, str, int]:
    """(owner, group, mode) of a path, in one command."""
    user, group, mode = host.check_output("stat -c '%%U %%G %%a' %s", path).split()
    return user, group, int(mode, 8)


def exec_stdin(container: str, script: str, data: str = "") -> subprocess.CompletedProcess:
    """Run a shell script in the instance with ``data`` on its standard input."""
    return subprocess.run(
        ["docker", "exec", "-i", container, "/bin/sh", "-c", script],
        input=data,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def hostname(host) -> str:
    return host.check_output("hostname")


@pytest.fixture(scope="module")
def registry(hostname, role_vars) -> str:
    """host:port clients use; the host name is one of the certificate's names."""
    return f"{hostname}:{role_vars['registry_port']}"


@pytest.fixture(scope="session")
def exported_ca() -> str:
    """The CA certificate the role exported to the controller (registry_tls_ca_fetch_dest)."""
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "registry-ca.crt"
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def client(host, container, exported_ca, user, registry) -> dict:
    """A client directory in the instance: a cert dir holding only the exported CA, a file
    with the password (0600, for grep -f), an empty auth file, and a logged-in auth file."""
    setup = exec_stdin(
        container,
        f"umask 077 && mkdir -p {CLIENT}/certs && cat > {CLIENT}/certs/ca.crt && echo '{{}}' > {CLIENT}/anonymous.json",
        exported_ca,
    )
    assert setup.returncode == 0, setup.stderr
    saved = exec_stdin(container, f"umask 077 && cat > {CLIENT}/password", user["password"])
    assert saved.returncode == 0, saved.stderr
    token = base64.b64encode(f"{user['name']}:{user['password']}".encode()).decode()
    header = exec_stdin(container, f"umask 077 && cat > {CLIENT}/basic-header", f"Authorization: Basic {token}\n")
    assert header.returncode == 0, header.stderr
    login = exec_stdin(
        container,
        f"skopeo login --authfile {CLIENT}/auth.json --cert-dir {CLIENT}/certs "
        f"--username {user['name']} --password-stdin {registry}",
        user["password"],
    )
    assert login.returncode == 0, login.stderr
    return {
        "dir": CLIENT,
        "certs": f"{CLIENT}/certs",
        "ca": f"{CLIENT}/certs/ca.crt",
        "auth": f"{CLIENT}/auth.json",
        "anonymous": f"{CLIENT}/anonymous.json",
        "password_file": f"{CLIENT}/password",
    }


BUILD_OCI = r"""
import gzip, hashlib, io, json, os, sys, tarfile, time
root = sys.argv[1]
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as out:
        out.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
payload = ("primage registry test " + str(time.time_ns()) + "\n").encode()
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    info = tarfile.TarInfo("hello.txt"); info.size = len(payload); info.mtime = 0; info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))
diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
layer = put(gzip.compress(raw.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode(),
             "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": [layer]}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": sys.argv[2]}
with open(os.path.join(root, "oci-layout"), "w") as out:
    json.dump({"imageLayoutVersion": "1.0.0"}, out)
with open(os.path.join(root, "index.json"), "w") as out:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, out)
print(json.dumps({"manifest": manifest["digest"], "layer": layer["digest"]}))
"""


@pytest.fixture(scope="module")
def local_image(container, client) -> dict:
    """A one-layer OCI image built in the instance; its manifest and layer digests."""
    built = exec_stdin(container, f"python3 - {client['dir']}/oci {IMAGE_TAG}", BUILD_OCI)
    assert built.returncode == 0, built.stderr
    digests = json.loads(built.stdout)
    digests["path"] = f"{client['dir']}/oci"
    return digests
