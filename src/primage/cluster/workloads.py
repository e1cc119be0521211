"""What other code asks of a running test cluster: server-side dry runs, status, access.

`dry_run(manifests)` is the check the manifest tests use: every object goes through the real
API server of the pinned version (admission, defaulting, strict field validation) without
being stored. `container_access()` says how a Docker container (a Molecule instance) reaches
the API server.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import paths
from ..errors import PrimageError, Problem
from . import host
from .config import Layout
from .lifecycle import kubectl, load_state, node_ready

FIELD_MANAGER = "primage-dry-run"
SCRATCH_LABEL = "primage.eu/dry-run-scratch"
KUBECONFIG_IN_CONTAINER = "/etc/primage/cluster/kubeconfig"


@dataclass
class Manifest:
    """One object to dry-run and where it came from (for the Problem a user reads)."""

    source: str
    index: int
    body: dict

    @property
    def label(self) -> str:
        meta = self.body.get("metadata") or {}
        return f"{self.body.get('kind', '?')}/{meta.get('name', '?')}"


def require_up(layout: Layout | None = None) -> Layout:
    layout = layout or Layout()
    state = load_state(layout)
    if state is None or state.phase != "up" or not all(host.alive(p) for p in state.process_objects()):
        raise PrimageError("no test cluster is up; run `primage cluster up` first")
    return layout


def _manifests(items) -> list[Manifest]:
    """Accept dicts, YAML text, paths of YAML files, or lists of any of those."""
    found: list[Manifest] = []
    for item in items if isinstance(items, list | tuple) else [items]:
        if isinstance(item, dict):
            found.append(Manifest("<object>", len(found), item))
        elif isinstance(item, Path):
            documents = [d for d in yaml.safe_load_all(item.read_text(encoding="utf-8")) if d]
            found.extend(Manifest(paths.relative(item), index, doc) for index, doc in enumerate(documents))
        elif isinstance(item, str):
            documents = [d for d in yaml.safe_load_all(item) if d]
            found.extend(Manifest("<text>", index, doc) for index, doc in enumerate(documents))
        else:
            raise PrimageError(f"cannot dry-run a {type(item).__name__} (expected a dict, YAML text or a path)")
    return found


def _flatten(manifests: list[Manifest]) -> list[Manifest]:
    """Items of a List become objects of their own."""
    flat = []
    for manifest in manifests:
        if manifest.body.get("kind") == "List":
            flat.extend(Manifest(manifest.source, manifest.index, item) for item in manifest.body.get("items") or [])
        else:
            flat.append(manifest)
    return flat


def dry_run(manifests, layout: Layout | None = None) -> list[Problem]:
    """Apply every object with server-side dry run; returns one Problem per refused object.

    Namespaces the objects name but that do not exist are created for the run (labelled
    SCRATCH_LABEL) and deleted afterwards: a dry run cannot create them, and an object in a
    missing namespace would be refused for that reason alone."""
    layout = require_up(layout)
    objects = _flatten(_manifests(manifests))
    scratch = _create_missing_namespaces(layout, objects)
    try:
        return [problem for manifest in objects if (problem := _dry_run_one(layout, manifest))]
    finally:
        for namespace in scratch:
            kubectl(layout, "delete", "namespace", namespace, "--wait=false", check=False)


def _create_missing_namespaces(layout: Layout, objects: list[Manifest]) -> list[str]:
    wanted = {(m.body.get("metadata") or {}).get("namespace") for m in objects} - {None, ""}
    wanted |= {(m.body.get("metadata") or {}).get("name") for m in objects if m.body.get("kind") == "Namespace"}
    phases = _namespace_phases(layout)
    # A namespace still being deleted (the scratch namespace of a dry run just before) refuses
    # new content, dry runs included: wait until it is gone, then it is created afresh.
    terminating = sorted(wanted & {name for name, phase in phases.items() if phase == "Terminating"})
    for namespace in terminating:
        kubectl(layout, "wait", "--for=delete", f"namespace/{namespace}", "--timeout=120s", check=False, timeout=150)
    existing = set(_namespace_phases(layout) if terminating else phases)
    created = []
    for namespace in sorted(wanted - existing):
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {SCRATCH_LABEL: uuid.uuid4().hex[:8]}},
        }
        kubectl(layout, "create", "-f", "-", stdin=json.dumps(body))
        created.append(namespace)
    return created


def _namespace_phases(layout: Layout) -> dict[str, str]:
    listing = json.loads(kubectl(layout, "get", "namespaces", "-o", "json").stdout)
    return {item["metadata"]["name"]: (item.get("status") or {}).get("phase", "") for item in listing["items"]}


def _dry_run_one(layout: Layout, manifest: Manifest) -> Problem | None:
    # --force-conflicts: the question is whether the server accepts the object, not who owns its
    # fields; an object of that name already deployed (a role's, another field manager) would
    # otherwise be refused with a conflict. A dry run stores nothing, so forcing takes nothing over.
    result = kubectl(
        layout,
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}",
        "--dry-run=server",
        "--validate=strict",
        "-o",
        "name",
        "-f",
        "-",
        stdin=json.dumps(manifest.body),
        check=False,
    )
    if result.returncode == 0:
        return None
    message = " ".join((result.stderr or result.stdout).split())
    return Problem(
        manifest.source,
        f"the API server refuses it: {message}",
        field=f"document {manifest.index + 1}: {manifest.label}",
    )


# --------------------------------------------------------------------------- access and status


def container_access(layout: Layout | None = None) -> dict:
    """How a Docker container (e.g. a Molecule instance) uses the cluster.

    The API server listens on the node's bridge address; a container on Docker's bridge
    reaches it through the host, so the admin kubeconfig works unchanged inside when mounted
    read-only. Returns the `docker run` arguments and the pieces a molecule.yml needs."""
    layout = require_up(layout)
    kubeconfig = str(layout.admin_kubeconfig)
    volume = f"{kubeconfig}:{KUBECONFIG_IN_CONTAINER}:ro"
    return {
        "kubeconfig": kubeconfig,
        "volumes": [volume],
        "env": {"KUBECONFIG": KUBECONFIG_IN_CONTAINER},
        "docker_args": ["-v", volume, "-e", f"KUBECONFIG={KUBECONFIG_IN_CONTAINER}"],
        "server": load_state(layout).settings_object().api_url,
    }


def environment(layout: Layout | None = None) -> dict[str, str]:
    """Variables a molecule.yml can use when the cluster is up (empty when it is not):
    PRIMAGE_CLUSTER_KUBECONFIG, the admin kubeconfig to mount read-only into an instance
    (e.g. `"${PRIMAGE_CLUSTER_KUBECONFIG}:/etc/primage/cluster/kubeconfig:ro"`), and
    PRIMAGE_CLUSTER_SERVER, the API server's URL, reachable from Docker containers."""
    layout = layout or Layout()
    state = load_state(layout)
    if state is None or state.phase != "up" or not all(host.alive(p) for p in state.process_objects()):
        return {}
    return {
        "PRIMAGE_CLUSTER_KUBECONFIG": str(layout.admin_kubeconfig),
        "PRIMAGE_CLUSTER_SERVER": state.settings_object().api_url,
    }


def status(layout: Layout | None = None) -> dict:
    layout = layout or Layout()
    state = load_state(layout)
    if state is None:
        return {"up": False, "phase": "down", "processes": []}
    processes = []
    for process in state.process_objects():
        alive = host.alive(process)
        rss = host.resident_kib(process.pid) if alive else 0
        processes.append({"name": process.name, "pid": process.pid, "alive": alive, "rss_mib": round(rss / 1024, 1)})
    shims = host.processes_with_argument(str(layout.socket))
    every_alive = all(p["alive"] for p in processes)
    settings = state.settings_object()
    node_is_ready = False
    if every_alive and state.phase == "up":
        node_is_ready = node_ready(layout, settings.node_name)
    return {
        "up": state.phase == "up" and every_alive,
        "phase": state.phase if every_alive else f"{state.phase} (a component exited)",
        "started": state.started,
        "api": settings.api_url,
        "node": settings.node_name,
        "node_ready": node_is_ready,
        "kubeconfig": str(layout.admin_kubeconfig),
        "processes": processes,
        "shims": len(shims),
        "shims_rss_mib": round(sum(host.resident_kib(pid) for pid in shims) / 1024, 1),
        "timings": state.timings,
    }
