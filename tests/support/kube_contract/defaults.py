"""Defaulting the API server applies on every write (a subset of pkg/apis/*/v1/defaults.go).

Only fields missing from the object are filled in, so applying the same configuration
twice gives the same stored object. Allocations that real controllers or allocators make
(Service cluster IPs and node ports, the Job selector and its pod labels) are made once
and then kept.
"""

from __future__ import annotations

import ipaddress
from typing import Any

MAX_INT32 = 2**31 - 1


def _container(container: dict) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for var in container.get("env") or []:
        field_ref = (var.get("valueFrom") or {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")


def pod_template(template: dict, restart_policy: str) -> None:
    spec = template.setdefault("spec", {})
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            _container(container)
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret"):
            if volume.get(source) is not None:
                volume[source].setdefault("defaultMode", 0o644)
        if volume.get("hostPath") is not None:
            volume["hostPath"].setdefault("type", "")


def namespace(obj: dict) -> None:
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")


def job(obj: dict, uid: str) -> None:
    spec = obj.setdefault("spec", {})
    name = obj["metadata"]["name"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    template = spec.setdefault("template", {})
    pod_template(template, "Never")
    if not spec.get("manualSelector"):
        generated = {"batch.kubernetes.io/controller-uid": uid}
        spec.setdefault("selector", {"matchLabels": generated})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", name)
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", name)
    obj.setdefault("status", {})


def statefulset(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    pod_template(spec.setdefault("template", {}), "Always")
    for claim in spec.get("volumeClaimTemplates") or []:
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        claim_spec = claim.setdefault("spec", {})
        claim_spec.setdefault("volumeMode", "Filesystem")
        claim.setdefault("status", {"phase": "Pending"})
    obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})


class ServiceAllocator:
    """Cluster IPs from 10.96.0.0/12 and node ports from 30000-32767, as kube-apiserver allocates them."""

    def __init__(self) -> None:
        self.network = ipaddress.ip_network("10.96.0.0/12")
        self.used_ips: set[str] = set()
        self.used_ports: dict[int, str] = {}

    def track(self, obj: dict) -> None:
        spec = obj.get("spec") or {}
        owner = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        if spec.get("clusterIP") not in (None, "None"):
            self.used_ips.add(spec["clusterIP"])
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                self.used_ports[port["nodePort"]] = owner

    def release(self, obj: dict) -> None:
        spec = obj.get("spec") or {}
        self.used_ips.discard(spec.get("clusterIP"))
        for port in spec.get("ports") or []:
            self.used_ports.pop(port.get("nodePort"), None)

    def _next_ip(self) -> str:
        for offset in range(10, self.network.num_addresses - 1):
            candidate = str(self.network.network_address + offset)
            if candidate not in self.used_ips:
                return candidate
        raise RuntimeError("service IP range exhausted")

    def _next_port(self) -> int:
        for port in range(30000, 32768):
            if port not in self.used_ports:
                return port
        raise RuntimeError("node port range exhausted")

    def default(self, obj: dict, previous: dict | None) -> None:
        spec = obj.setdefault("spec", {})
        old_spec = (previous or {}).get("spec") or {}
        kind = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if kind != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_spec.get("clusterIP") or self._next_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if kind in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                old = old_ports.get((port.get("port"), port["protocol"])) or {}
                port["nodePort"] = old.get("nodePort") or self._next_port()
        obj.setdefault("status", {"loadBalancer": {}})


def apply_defaults(kind: str, obj: dict, uid: str, previous: dict | None, services: ServiceAllocator) -> None:
    if kind == "Namespace":
        namespace(obj)
    elif kind == "Secret":
        secret(obj)
    elif kind == "Job":
        job(obj, uid)
    elif kind == "StatefulSet":
        statefulset(obj)
    elif kind == "Service":
        services.default(obj, previous)


def strip_none(value: Any) -> Any:
    """JSON nulls are dropped on decode by the real server's typed structs."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value
