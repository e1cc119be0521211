"""Helpers for tests that drive the real test cluster: the cluster tests (tests/cluster) and the
Molecule verifiers of the scenarios that run on it (a `cluster.yml` beside their molecule.yml).

A verifier loads it from its tests/conftest.py:

    sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))
    from cluster_verify import Kube, ...

Everything goes through the pinned kubectl with the cluster's admin kubeconfig (primage.cluster).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from primage import cluster


class Kube:
    """kubectl against the running cluster, with waits that show what went wrong."""

    def __init__(self, layout: cluster.Layout | None = None):
        self.layout = layout or cluster.Layout()

    def run(self, *args: str, stdin: str | None = None, check: bool = True):
        return cluster.kubectl(self.layout, *args, stdin=stdin, check=check)

    def apply(self, *objects: dict) -> None:
        self.run("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def get(self, kind: str, name: str, namespace: str = "default") -> dict:
        return json.loads(self.run("get", kind, name, "-n", namespace, "-o", "json").stdout)

    def items(self, kind: str, namespace: str, *selector: str) -> list[dict]:
        return json.loads(self.run("get", kind, "-n", namespace, *selector, "-o", "json").stdout)["items"]

    def wait_for(self, what: str, predicate, timeout: float = 120.0, diagnose: tuple[str, ...] = ()) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        detail = self.run(*diagnose, check=False).stdout[-3000:] if diagnose else ""
        raise AssertionError(f"timed out waiting for {what}\n{detail}")

    def pod_phase(self, name: str, namespace: str = "default") -> str:
        result = self.run("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}", check=False)
        return result.stdout.strip()

    def wait_pod_done(self, name: str, namespace: str = "default", timeout: float = 120.0) -> str:
        self.wait_for(
            f"pod {name} to finish",
            lambda: self.pod_phase(name, namespace) in ("Succeeded", "Failed"),
            timeout,
            ("describe", "pod", name, "-n", namespace),
        )
        return self.pod_phase(name, namespace)

    def logs(self, name: str, namespace: str = "default") -> str:
        return self.run("logs", name, "-n", namespace, check=False).stdout

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        return base64.b64decode(self.get("secret", name, namespace)["data"][key]).decode()

    def application_objects(self, namespace: str) -> list[dict]:
        """What an application role creates: its namespace and the objects of every kind it applies."""
        kinds = "namespaces,secrets,configmaps,jobs.batch,statefulsets.apps,services,persistentvolumeclaims"
        managed = ("-l", "app.kubernetes.io/managed-by=primage.platform", "--show-managed-fields")
        listing = self.items(kinds, namespace, *managed)
        return [o for o in listing if o["kind"] != "Namespace" or o["metadata"]["name"] == namespace]


# --------------------------------------------------------------------------- Molecule verifiers


def require_cluster_run() -> dict[str, str]:
    """The variables `primage test roles` gives a run on the cluster; fails (never skips) without them."""
    names = ("PRIMAGE_CLUSTER_KUBECONFIG", "PRIMAGE_CLUSTER_SPACE", "PRIMAGE_CLUSTER_NODE_IP")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: this scenario runs on the real test cluster; "
            "run it with `primage test roles ROLE`"
        )
    return {name: os.environ[name] for name in names}


def _playbook_command(playbook: str, *args: str) -> list[str]:
    """ansible-playbook on the scenario's instance, as Molecule runs it (its inventory and config)."""
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    return ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(scenario, playbook), *args]


def run_playbook(playbook: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    return subprocess.run(_playbook_command(playbook, *args), capture_output=True, text=True, env=env, check=False)


def start_playbook(playbook: str, output, *args: str) -> subprocess.Popen:
    """The same, in the background, its output (both streams) into the open file `output`."""
    return subprocess.Popen(_playbook_command(playbook, *args), stdout=output, stderr=subprocess.STDOUT, text=True)


def write_file(instance: str, path: str, text: str, mode: str = "0600") -> None:
    """Write a file inside the instance (through docker exec's standard input, never a command line)."""
    script = f"umask 077 && cat > {path} && chmod {mode} {path}"
    result = subprocess.run(
        ["docker", "exec", "-i", instance, "sh", "-c", script], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def written_manifests(host, namespace: str) -> dict[str, dict]:
    """The manifests the role left for inspection in /etc/primage/apps/<namespace>/, by file name."""
    folder = f"/etc/primage/apps/{namespace}"
    names = [n for n in host.check_output(f"ls {folder}").split() if n.endswith(".yaml")]
    return {n: yaml.safe_load(host.file(f"{folder}/{n}").content_string) for n in names}


def http(
    url: str, token: str | None = None, method: str = "GET", body: dict | None = None, context=None
) -> tuple[int, str]:
    """(status, text) of one request; a token goes in the Authorization header, as Jupyter takes it.
    An https URL is verified against `context` (an ssl.SSLContext trusting the service's CA)."""
    headers = {"Authorization": f"token {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http to the test cluster)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


# Runs inside the instance: the values come on standard input, so its own command line holds none.
_SCAN = r"""
import base64, json, os, stat, sys
values = {v for v in json.load(sys.stdin) if len(v) >= 8}
values |= {base64.b64encode(v.encode()).decode() for v in values}
me = str(os.getpid())
processes = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        continue
    if pid != me and any(v in command for v in values):
        processes.append(command.split(" ")[0])
files = []
for folder, dirs, names in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(folder, d) not in ("/proc", "/sys", "/dev")]
    for name in names:
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
            if not (stat.S_ISREG(info.st_mode) and info.st_mode & stat.S_IROTH) or info.st_size > 5 << 20:
                continue
            content = open(path, "rb").read()
        except OSError:
            continue
        if any(v.encode() in content for v in values):
            files.append(path)
print(json.dumps({"values_checked": len(values), "processes": processes, "world_readable_files": files}))
"""


def scan_secrets(instance: str, values: list[str]) -> dict:
    """Process command lines and world-readable files of the instance holding one of `values` (or its base64)."""
    result = subprocess.run(
        ["docker", "exec", "-i", instance, "python3", "-c", _SCAN],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def without_secrets(objects: list[dict]) -> str:
    """Every object but the Secrets, as text: where a secret value must never appear."""
    return json.dumps([o for o in objects if o["kind"] != "Secret"])


def contained(applied, stored) -> bool:
    """Whether every field of `applied` has its value in `stored` (which adds the server's defaults)."""
    if isinstance(applied, dict):
        return isinstance(stored, dict) and all(k in stored and contained(v, stored[k]) for k, v in applied.items())
    if isinstance(applied, list):
        return isinstance(stored, list) and len(applied) == len(stored) and all(map(contained, applied, stored))
    return applied == stored or str(applied) == str(stored)  # quantities: 1 is stored as "1"
