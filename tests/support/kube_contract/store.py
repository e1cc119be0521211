"""The object store behind the contract server: create, read, list, update, patch, apply, delete.

It keeps what the real API server keeps per object (uid, resourceVersion from one
cluster-wide counter, creationTimestamp, generation for workloads, managedFields) and
answers with the same Status errors. A write that changes nothing stores nothing and
keeps the resourceVersion, as the real server does, so idempotent clients see no change.
The state can be saved to a JSON file (root-only) after every write and reloaded on start.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import defaults, errors, merge, validation
from .catalog import RESOURCES, Resource
from .errors import ApiError

GENERATION_KINDS = {"Job", "StatefulSet"}
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- selectors ----------------------------------------------------------------------------------


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector(text: str | None) -> Callable[[dict], bool]:
    """Equality- and set-based label selectors (`a=b,c!=d,e in (f,g),h,!i`)."""
    if not text:
        return lambda labels: True
    checks: list[Callable[[dict], bool]] = []
    for part in _split_outside_parens(text):
        match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", part)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if op == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
            continue
        match = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", part)
        if match:
            key, op, value = match.groups()
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif part.startswith("!"):
            absent = part[1:].strip()
            checks.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[^\s=!()]+", part):
            checks.append(lambda labels, k=part: k in labels)
        else:
            raise errors.bad_request(f"unable to parse requirement: {part!r}")
    return lambda labels: all(check(labels) for check in checks)


def field_selector(text: str | None) -> Callable[[dict], bool]:
    if not text:
        return lambda obj: True
    checks = []
    for part in _split_outside_parens(text):
        match = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", part)
        if not match or match.group(1) not in ("metadata.name", "metadata.namespace"):
            raise errors.bad_request(f"field label not supported: {part.split('=')[0].rstrip('!')}")
        field, op, value = match.groups()
        getter = field.split(".")[1]
        if op == "!=":
            checks.append(lambda obj, g=getter, v=value: obj["metadata"].get(g) != v)
        else:
            checks.append(lambda obj, g=getter, v=value: obj["metadata"].get(g) == v)
    return lambda obj: all(check(obj) for check in checks)


# --- the store ----------------------------------------------------------------------------------


def _comparable(obj: dict) -> dict:
    clone = copy.deepcopy(obj)
    meta = clone.get("metadata", {})
    for key in ("resourceVersion", "managedFields", "generation"):
        meta.pop(key, None)
    return clone


def _managed_equal(a: list, b: list) -> bool:
    def strip(entries):
        return [{k: v for k, v in e.items() if k != "time"} for e in entries]

    return strip(a) == strip(b)


class Store:
    def __init__(self, state_file: str | os.PathLike | None = None) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.revision = 1
        self.services = defaults.ServiceAllocator()
        self.state_file = Path(state_file) if state_file else None
        if self.state_file and self.state_file.exists():
            self._load()

    # persistence
    def _load(self) -> None:
        state = json.loads(self.state_file.read_text(encoding="utf-8"))
        self.revision = state.get("revision", 1)
        for obj in state.get("objects", []):
            resource = self._resource_of(obj)
            key = (resource.qualified, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            self.objects[key] = obj
            if resource.kind == "Service":
                self.services.track(obj)

    def _save(self) -> None:
        if not self.state_file:
            return
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"revision": self.revision, "objects": self.dump()}, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    @staticmethod
    def _resource_of(obj: dict) -> Resource:
        for resource in RESOURCES:
            if resource.api_version == obj.get("apiVersion") and resource.kind == obj.get("kind"):
                return resource
        raise ValueError(f"unknown kind in state: {obj.get('apiVersion')} {obj.get('kind')}")

    def dump(self) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(self.objects[k]) for k in sorted(self.objects)]

    # helpers
    def _next_revision(self) -> str:
        self.revision += 1
        return str(self.revision)

    def _require_namespace(self, resource: Resource, namespace: str) -> None:
        if resource.namespaced and ("namespaces", "", namespace) not in self.objects:
            ns = next(r for r in RESOURCES if r.kind == "Namespace")
            raise errors.not_found_error(ns, namespace)

    def _lookup(self, resource: Resource, namespace: str, name: str) -> dict:
        obj = self.objects.get((resource.qualified, namespace if resource.namespaced else "", name))
        if obj is None:
            raise errors.not_found_error(resource, name)
        return obj

    def _check_identity(self, resource: Resource, body: dict, namespace: str, name: str | None) -> None:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != resource.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        if kind and kind != resource.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        meta = body.get("metadata") or {}
        if resource.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if name is not None and meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )

    def _validate(self, resource: Resource, obj: dict) -> list:
        kind = resource.kind
        if kind == "Namespace":
            return validation.namespace_errors(obj)
        if kind == "Secret":
            return validation.secret_errors(obj)
        if kind == "ConfigMap":
            return validation.configmap_errors(obj)
        if kind == "Job":
            return validation.job_errors(obj)
        if kind == "StatefulSet":
            return validation.statefulset_errors(obj)
        if kind == "Service":
            return validation.service_errors(obj, self.services.used_ports)
        return []

    def _write(
        self,
        resource: Resource,
        namespace: str,
        body: dict,
        old: dict | None,
        managed: list,
        dry_run: bool,
        subresource: str | None = None,
    ) -> tuple[dict, bool]:
        """Normalise, default, validate and store `body`; return (object, created-or-changed)."""
        obj = defaults.strip_none(copy.deepcopy(body))
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or (old or {}).get("metadata", {}).get("name")
        if not name:
            raise errors.invalid_error(
                resource, "", [errors.required("metadata.name", "name or generateName is required")]
            )
        for key in SERVER_METADATA:
            meta.pop(key, None)
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        ordered = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": meta}
        ordered.update({k: v for k, v in obj.items() if k not in ordered})
        obj = ordered
        if resource.kind == "Secret" and "stringData" in obj:
            string_data = obj.pop("stringData") or {}
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        if resource.status_subresource:
            if subresource == "status":
                status = obj.get("status")
                obj = copy.deepcopy(old)
                obj["status"] = status if status is not None else {}
            elif old is not None:
                obj["status"] = copy.deepcopy(old.get("status", {}))
            else:
                obj.pop("status", None)
        uid = old["metadata"]["uid"] if old else str(uuid.uuid4())
        saved_services = (set(self.services.used_ips), dict(self.services.used_ports))
        if old is not None and resource.kind == "Service":
            self.services.release(old)
        try:
            defaults.apply_defaults(resource.kind, obj, uid, old, self.services)
            problems = self._validate(resource, obj)
            if old is not None:
                problems += validation.update_errors(resource.kind, old, obj)
            if problems:
                raise errors.invalid_error(resource, name, problems)
        except ApiError:
            self.services.used_ips, self.services.used_ports = saved_services
            raise
        meta = obj["metadata"]
        meta["uid"] = uid
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else now()
        if resource.kind in GENERATION_KINDS:
            generation = (old or {}).get("metadata", {}).get("generation", 0)
            spec_changed = old is None or old.get("spec") != obj.get("spec")
            meta["generation"] = generation + 1 if spec_changed else generation
        if managed:
            meta["managedFields"] = managed
        if (
            old is not None
            and _comparable(old) == _comparable(obj)
            and _managed_equal(old["metadata"].get("managedFields", []), managed)
        ):
            self.services.used_ips, self.services.used_ports = saved_services
            return copy.deepcopy(old), False
        if dry_run:
            self.services.used_ips, self.services.used_ports = saved_services
            meta["resourceVersion"] = old["metadata"]["resourceVersion"] if old else ""
            return obj, True
        meta["resourceVersion"] = self._next_revision()
        self.objects[(resource.qualified, namespace if resource.namespaced else "", name)] = obj
        if resource.kind == "Service":
            self.services.track(obj)
        self._save()
        return copy.deepcopy(obj), True

    @staticmethod
    def _managed_entry(resource: Resource, manager: str, operation: str, fields: dict, subresource: str | None) -> dict:
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": resource.api_version,
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if subresource:
            entry["subresource"] = subresource
        return entry

    def _update_managed(
        self,
        resource: Resource,
        old: dict | None,
        manager: str,
        operation: str,
        fields: dict,
        subresource: str | None,
        replace: bool,
    ) -> list:
        entries = copy.deepcopy((old or {}).get("metadata", {}).get("managedFields", []))
        for index, entry in enumerate(entries):
            if (entry.get("manager"), entry.get("operation"), entry.get("subresource")) == (
                manager,
                operation,
                subresource,
            ):
                merged = fields if replace else merge.union([entry.get("fieldsV1", {}), fields])
                if merged != entry.get("fieldsV1"):
                    entries[index] = self._managed_entry(resource, manager, operation, merged, subresource)
                return entries
        if fields or operation == "Apply":
            entries.append(self._managed_entry(resource, manager, operation, fields, subresource))
        return entries

    # operations
    def list(
        self, resource: Resource, namespace: str | None, labels: str | None = None, fields: str | None = None
    ) -> dict:
        match_labels, match_fields = label_selector(labels), field_selector(fields)
        with self.lock:
            items = []
            for (qualified, ns, _), obj in sorted(self.objects.items()):
                if qualified != resource.qualified or (namespace and ns != namespace):
                    continue
                if match_labels(obj["metadata"].get("labels") or {}) and match_fields(obj):
                    item = copy.deepcopy(obj)
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                    items.append(item)
            return {
                "kind": resource.list_kind,
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.revision)},
                "items": items,
            }

    def get(self, resource: Resource, namespace: str, name: str) -> dict:
        with self.lock:
            return copy.deepcopy(self._lookup(resource, namespace, name))

    def create(self, resource: Resource, namespace: str, body: dict, manager: str, dry_run: bool = False) -> dict:
        with self.lock:
            self._check_identity(resource, body, namespace, None)
            meta = body.get("metadata") or {}
            if meta.get("resourceVersion"):
                raise errors.invalid_error(
                    resource,
                    meta.get("name", ""),
                    [errors.invalid("metadata.resourceVersion", meta["resourceVersion"], "must be empty")],
                )
            if not meta.get("name") and meta.get("generateName"):
                body = copy.deepcopy(body)
                body["metadata"]["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            name = body.get("metadata", {}).get("name", "")
            self._require_namespace(resource, namespace)
            if name and (resource.qualified, namespace if resource.namespaced else "", name) in self.objects:
                raise errors.already_exists_error(resource, name)
            managed = self._update_managed(resource, None, manager, "Update", merge.object_field_set(body), None, True)
            obj, _ = self._write(resource, namespace, body, None, managed, dry_run)
            return obj

    def replace(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: dict,
        manager: str,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> dict:
        with self.lock:
            self._check_identity(resource, body, namespace, name)
            old = self._lookup(resource, namespace, name)
            expected = (body.get("metadata") or {}).get("resourceVersion")
            if expected and expected != old["metadata"]["resourceVersion"]:
                raise errors.conflict_error(
                    resource,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            body = copy.deepcopy(body)
            body.setdefault("metadata", {})["name"] = name
            managed = self._update_managed(
                resource, old, manager, "Update", merge.object_field_set(body), subresource, True
            )
            obj, _ = self._write(resource, namespace, body, old, managed, dry_run, subresource)
            return obj

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: dict,
        content_type: str,
        manager: str | None,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> tuple[dict, bool]:
        """Returns (object, created)."""
        with self.lock:
            if not isinstance(patch, dict):
                raise errors.bad_request("the body of the request must be a JSON object")
            if content_type == "application/apply-patch+yaml":
                return self._apply(resource, namespace, name, patch, manager, dry_run, subresource)
            old = self._lookup(resource, namespace, name)
            if content_type == "application/merge-patch+json":
                new = merge.json_merge_patch(old, patch)
            else:
                new = merge.strategic_merge_patch(old, patch)
            expected = (patch.get("metadata") or {}).get("resourceVersion")
            if expected and expected != old["metadata"]["resourceVersion"]:
                raise errors.conflict_error(
                    resource,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            self._check_identity(resource, new, namespace, name)
            managed = self._update_managed(
                resource,
                old,
                manager or "unknown",
                "Update",
                merge.object_field_set(patch),
                subresource,
                False,
            )
            obj, _ = self._write(resource, namespace, new, old, managed, dry_run, subresource)
            return obj, False

    def _apply(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        config: dict,
        manager: str | None,
        dry_run: bool,
        subresource: str | None,
    ) -> tuple[dict, bool]:
        if not manager:
            raise ApiError(
                422,
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                "Invalid",
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                },
            )
        if not config.get("apiVersion") or not config.get("kind"):
            raise errors.bad_request("invalid object type: apiVersion and kind are required for apply")
        self._check_identity(resource, config, namespace, name)
        key = (resource.qualified, namespace if resource.namespaced else "", name)
        old = self.objects.get(key)
        entries = (old or {}).get("metadata", {}).get("managedFields", [])
        previous = next(
            (
                e.get("fieldsV1", {})
                for e in entries
                if e.get("manager") == manager and e.get("operation") == "Apply" and e.get("subresource") == subresource
            ),
            {},
        )
        others = merge.union(
            [
                e.get("fieldsV1", {})
                for e in entries
                if not (e.get("manager") == manager and e.get("operation") == "Apply")
            ]
        )
        body = copy.deepcopy(config)
        body.setdefault("metadata", {})["name"] = name
        fields = merge.object_field_set(body)
        if old is None:
            self._require_namespace(resource, namespace)
            managed = [self._managed_entry(resource, manager, "Apply", fields, subresource)]
            obj, _ = self._write(resource, namespace, body, None, managed, dry_run, subresource)
            return obj, True
        new = merge.server_side_apply(old, body, previous, others)
        managed = self._update_managed(resource, old, manager, "Apply", fields, subresource, True)
        obj, _ = self._write(resource, namespace, new, old, managed, dry_run, subresource)
        return obj, False

    def delete(self, resource: Resource, namespace: str, name: str, dry_run: bool = False) -> dict:
        with self.lock:
            obj = copy.deepcopy(self._lookup(resource, namespace, name))
            if dry_run:
                return obj
            del self.objects[(resource.qualified, namespace if resource.namespaced else "", name)]
            if resource.kind == "Service":
                self.services.release(obj)
            if resource.kind == "Namespace":
                for key in [k for k in self.objects if k[1] == name]:
                    removed = self.objects.pop(key)
                    if removed["kind"] == "Service":
                        self.services.release(removed)
                obj["metadata"]["deletionTimestamp"] = now()
                obj["status"] = {"phase": "Terminating"}
            obj["metadata"]["resourceVersion"] = self._next_revision()
            self._save()
            return obj

    def delete_collection(
        self,
        resource: Resource,
        namespace: str | None,
        labels: str | None,
        fields: str | None,
        dry_run: bool = False,
    ) -> dict:
        with self.lock:
            listing = self.list(resource, namespace, labels, fields)
            for item in listing["items"]:
                self.delete(resource, item["metadata"].get("namespace", ""), item["metadata"]["name"], dry_run)
            listing["metadata"]["resourceVersion"] = str(self.revision)
            return listing
