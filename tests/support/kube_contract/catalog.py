"""The resources this contract server serves, and the discovery documents describing them.

Discovery follows the legacy (non-aggregated) endpoints that the kubernetes Python
client's dynamic client reads: `/version`, `/api` (APIVersions), `/api/v1` and
`/apis/<group>/<version>` (APIResourceList), `/apis` (APIGroupList) and `/apis/<group>`
(APIGroup). Each APIResource carries name, singularName, namespaced, kind, verbs,
shortNames/categories when the real server lists them, and a storageVersionHash.
Only the `status` subresource is served, so only it is advertised.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

FULL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = tuple(FULL_VERBS)
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`secrets`, `jobs.batch`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`Secret`, `Job.batch`: how Invalid messages name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def storage_version_hash(self) -> str:
        digest = hashlib.sha256(f"{self.api_version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()

    def discovery(self) -> list[dict]:
        entry = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entry["storageVersionHash"] = self.storage_version_hash()
        entries = [entry]
        if self.status_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "configmaps", "configmap", "ConfigMap", True, short_names=("cm",), status_subresource=False),
    Resource("", "v1", "namespaces", "namespace", "Namespace", False, verbs=NAMESPACE_VERBS, short_names=("ns",)),
    Resource("", "v1", "secrets", "secret", "Secret", True, status_subresource=False),
    Resource("", "v1", "services", "service", "Service", True, short_names=("svc",), categories=("all",)),
    Resource(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        True,
        short_names=("sts",),
        categories=("all",),
    ),
    Resource("batch", "v1", "jobs", "job", "Job", True, categories=("all",)),
)


def by_path(group: str, version: str, plural: str) -> Resource | None:
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def by_kind(api_version: str, kind: str) -> Resource | None:
    for resource in RESOURCES:
        if resource.api_version == api_version and resource.kind == kind:
            return resource
    return None


def groups() -> dict[str, list[str]]:
    """Named API groups (not the core group) and their versions, in a stable order."""
    found: dict[str, list[str]] = {}
    for resource in RESOURCES:
        if resource.group:
            versions = found.setdefault(resource.group, [])
            if resource.version not in versions:
                versions.append(resource.version)
    return dict(sorted(found.items()))


def version_info(git_version: str) -> dict:
    """The `/version` document (k8s.io/apimachinery version.Info)."""
    core = git_version.lstrip("v").split("-")[0]
    major, minor = core.split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
        "gitVersion": git_version if git_version.startswith("v") else f"v{git_version}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_version(group: str, version: str) -> dict:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(group: str) -> dict:
    versions = groups()[group]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_group_version(group, v) for v in versions],
        "preferredVersion": _group_version(group, versions[0]),
    }


def api_group_list() -> dict:
    items = []
    for group in groups():
        entry = api_group(group)
        entry.pop("kind")
        entry.pop("apiVersion")
        items.append(entry)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def api_resource_list(group: str, version: str) -> dict | None:
    members = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not members:
        return None
    resources = []
    for resource in sorted(members, key=lambda r: r.plural):
        resources.extend(resource.discovery())
    # The core group's list carries no apiVersion; named groups' lists do.
    document = {"kind": "APIResourceList"}
    if group:
        document["apiVersion"] = "v1"
    document["groupVersion"] = f"{group}/{version}" if group else version
    document["resources"] = resources
    return document
