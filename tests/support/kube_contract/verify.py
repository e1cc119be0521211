"""Helpers and pytest fixtures for Molecule verifiers (testinfra) of scenarios that run the
contract server inside their instance (see ansible/start.yml).

Load it from a scenario's tests/conftest.py:

    sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))
    pytest_plugins = ["kube_contract.verify"]

Fixtures: `contract_objects` (every stored object), `contract_requests` (the request log).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HOME = "/opt/kube-contract"
STATE_FILE = "/var/lib/kube-contract/objects.json"
REQUEST_LOG = "/var/lib/kube-contract/requests.jsonl"
PKI = "/var/lib/kube-contract/pki"
API = "https://127.0.0.1:6443"
KUBERNETES_VERSION = "1.36.0"  # schema version for kubernetes-validate (the contract server reports v1.36.3)


def stored_objects(host) -> list[dict]:
    return json.loads(host.file(STATE_FILE).content_string)["objects"]


def request_log(host) -> list[dict]:
    text = host.file(REQUEST_LOG).content_string
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def contract_objects(host) -> list[dict]:
    return stored_objects(host)


@pytest.fixture(scope="module")
def contract_requests(host) -> list[dict]:
    return request_log(host)


def select(objects: list[dict], kind: str, namespace: str | None = None, name: str | None = None) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (namespace is None or o["metadata"].get("namespace") == namespace)
        and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[dict], kind: str, namespace: str | None = None, name: str | None = None) -> dict:
    found = select(objects, kind, namespace, name)
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


def secret_value(objects: list[dict], namespace: str, name: str, key: str) -> str:
    return base64.b64decode(one(objects, "Secret", namespace, name)["data"][key]).decode()


def requests_mentioning(requests: list[dict], value: str) -> list[dict]:
    """Log entries whose path, query or body holds `value` or its base64 form."""
    needles = (value, base64.b64encode(value.encode()).decode())
    return [r for r in requests if any(n in json.dumps(r) for n in needles)]


def validate_schema(documents: dict[str, dict], workdir: Path, version: str = KUBERNETES_VERSION):
    """Run `kubernetes-validate --strict` (the host venv's) over the documents; returns the process."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, document in sorted(documents.items()):
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")
        files.append(str(path))
    tool = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run(
        [str(tool), "--strict", "--kubernetes-version", version, *files], capture_output=True, text=True
    )


def assert_valid_kubernetes(documents: dict[str, dict], workdir: Path) -> None:
    """Every document passes `kubernetes-validate --strict` for the pinned Kubernetes version."""
    result = validate_schema(documents, workdir)
    assert result.returncode == 0, result.stdout + result.stderr


def written_manifests(host, namespace: str) -> dict[str, dict]:
    """The manifests the role left for inspection in /etc/primage/apps/<namespace>/, by file name."""
    folder = f"/etc/primage/apps/{namespace}"
    names = [n for n in host.check_output(f"ls {folder}").split() if n.endswith(".yaml")]
    return {n: yaml.safe_load(host.file(f"{folder}/{n}").content_string) for n in names}


def scan_secrets(host) -> dict:
    """Process command lines and world-readable files holding a stored Secret value, found in the instance."""
    result = host.run(f"cd {HOME} && python3 -m kube_contract scan-secrets --state-file {STATE_FILE}")
    assert result.rc in (0, 1), result.stderr
    return json.loads(result.stdout)


def api(host, method: str, path: str) -> tuple[int, dict]:
    """One request to the contract server from inside the instance, with the admin certificate."""
    script = (
        "import json, ssl, sys, urllib.request, urllib.error\n"
        f"ctx = ssl.create_default_context(cafile='{PKI}/ca.crt')\n"
        f"ctx.load_cert_chain('{PKI}/admin.crt', '{PKI}/admin.key')\n"
        f"req = urllib.request.Request('{API}' + sys.argv[2], method=sys.argv[1])\n"
        "try:\n"
        "    answer = urllib.request.urlopen(req, context=ctx)\n"
        "except urllib.error.HTTPError as error:\n"
        "    answer = error\n"
        "print(json.dumps({'code': answer.status, 'body': json.load(answer)}))\n"
    )
    result = host.run(f"python3 -c {shlex.quote(script)} {shlex.quote(method)} {shlex.quote(path)}")
    assert result.rc == 0, result.stderr
    answer = json.loads(result.stdout)
    return answer["code"], answer["body"]


def run_playbook(playbook: str, *args: str) -> subprocess.CompletedProcess:
    """ansible-playbook on the scenario's instance, as Molecule runs it (its inventory and config)."""
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    command = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        os.path.join(scenario, playbook),
    ]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=os.environ.copy())
