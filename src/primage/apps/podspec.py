"""A rendered pod template as the local Docker engine runs it: the same container on one machine.

The local backend never writes a container definition of its own: it takes the pod template of
the rendered workload (the Job's, the StatefulSet's) and maps each field to what the engine
offers. Same image, command and arguments, environment, user and groups, capabilities,
read-only root, resource limits, and every volume at the same in-container path:

| Pod volume | Local stand-in |
| --- | --- |
| hostPath (the space in node mode) | a bind mount of that folder (HostToContainer where the host mount allows) |
| configMap, secret | their data written as files into the application's state folder, bind-mounted read-only |
| emptyDir | a tmpfs, mode 1777 as Kubernetes makes an emptyDir |
| persistentVolumeClaim | a named volume of the engine, kept across restarts |

What cannot mean the same on one machine is refused with the field named, never ignored in
silence: a secret in the environment (the engine shows every variable in `docker inspect`),
privileged containers, extended resources (pod-mode FUSE), other volume kinds.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PrimageError

# Kubernetes mount propagation -> the engine's bind propagation.
_PROPAGATION = {"HostToContainer": "rslave", "Bidirectional": "rshared", "None": "rprivate"}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FACTORS = {
    None: 1,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
DEFAULT_GRACE_SECONDS = 30  # Kubernetes' terminationGracePeriodSeconds default
CONFIGMAP_DEFAULT_MODE = SECRET_DEFAULT_MODE = 0o644  # Kubernetes' defaultMode (420)


def quantity(text: str | int | float, where: str) -> float:
    """A Kubernetes quantity ("500m", "4Gi", "2") as a number."""
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise PrimageError(f"'{text}' is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)", field=where)
    return float(match.group(1)) * _FACTORS[match.group(2)]


@dataclass
class VolumeFile:
    """A file a configMap or secret volume holds, written before the container starts."""

    path: Path
    data: bytes
    mode: int
    secret: bool


@dataclass
class ContainerPlan:
    """Everything the engine's create call needs, and the files to write first."""

    container: str  # the container's name in the pod (e.g. "task")
    image: str
    create: dict  # keyword arguments of APIClient.create_container, host_config aside
    host_config: dict  # keyword arguments of APIClient.create_host_config
    files: list[VolumeFile] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)  # engine volumes standing in for claims
    ports: dict[str, int] = field(default_factory=dict)  # port name -> container port
    stop_timeout: int = DEFAULT_GRACE_SECONDS
    user: tuple[int, int] | None = None  # (uid, gid) the container runs as

    def environment(self) -> dict[str, str]:
        return dict(self.create.get("environment") or {})


def translate(
    pod_template: dict,
    objects: dict[tuple[str, str], dict],
    *,
    files_dir: Path,
    claim_prefix: str,
    where: str,
) -> ContainerPlan:
    """The single container of `pod_template` (a PodTemplateSpec) for the local engine.

    `objects` are the other rendered manifests by (kind, name), for the ConfigMaps and Secrets
    the pod reads; `files_dir` is where their files go; `where` names the manifest in errors."""
    spec = pod_template.get("spec") or {}
    containers = spec.get("containers") or []
    if len(containers) != 1 or spec.get("initContainers"):
        raise PrimageError(
            f"the local backend runs pods of exactly one container; this one has {len(containers)}"
            + (" and init containers" if spec.get("initContainers") else ""),
            file=where,
            field="spec.template.spec.containers",
        )
    container = containers[0]
    name = container.get("name", "main")
    field_prefix = f"spec.template.spec.containers[{name}]"
    context = _security(spec.get("securityContext") or {}, container.get("securityContext") or {}, where, field_prefix)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    plan = ContainerPlan(container=name, image=container["image"], create={}, host_config={})
    plan.user = context.pop("_user", None)
    mounts = [
        _mount(mount, volumes, objects, files_dir, claim_prefix, plan, where, field_prefix)
        for mount in container.get("volumeMounts") or []
    ]
    environment = _environment(container, objects, pod_template, where, field_prefix)
    ports = [p for p in container.get("ports") or [] if p.get("containerPort")]
    plan.ports = {p.get("name") or str(p["containerPort"]): int(p["containerPort"]) for p in ports}
    plan.create = {
        "image": container["image"],
        "environment": environment,
        "labels": {str(k): str(v) for k, v in ((pod_template.get("metadata") or {}).get("labels") or {}).items()},
        "ports": [(int(p["containerPort"]), p.get("protocol", "TCP").lower()) for p in ports],
    }
    if container.get("command"):
        plan.create["entrypoint"] = [str(a) for a in container["command"]]
    if container.get("args"):
        plan.create["command"] = [str(a) for a in container["args"]]
    if container.get("workingDir"):
        plan.create["working_dir"] = container["workingDir"]
    if plan.user:
        plan.create["user"] = f"{plan.user[0]}:{plan.user[1]}"
    plan.host_config = {
        "mounts": mounts,
        **context,
        **_resources(container.get("resources") or {}, where, field_prefix),
    }
    if ports:
        # Published on the loopback only: one machine, the user's own browser.
        plan.host_config["port_bindings"] = {
            f"{p['containerPort']}/{p.get('protocol', 'TCP').lower()}": ("127.0.0.1", None) for p in ports
        }
    plan.stop_timeout = int(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
    return plan


def _security(pod: dict, container: dict, where: str, prefix: str) -> dict:
    """Pod and container securityContext (the container's wins) as engine options."""
    if container.get("privileged"):
        raise PrimageError("privileged containers are never run", file=where, field=f"{prefix}.securityContext")
    merged = {**pod, **{k: v for k, v in container.items() if v is not None}}
    options: dict = {}
    uid, gid = merged.get("runAsUser"), merged.get("runAsGroup")
    if merged.get("runAsNonRoot") and uid == 0:
        raise PrimageError("runAsNonRoot with runAsUser 0", file=where, field=f"{prefix}.securityContext")
    if uid is not None:
        options["_user"] = (int(uid), int(gid if gid is not None else uid))
    groups = [int(g) for g in merged.get("supplementalGroups") or []]
    if merged.get("fsGroup") is not None:
        groups.append(int(merged["fsGroup"]))
    groups = [g for g in dict.fromkeys(groups) if g != (gid if gid is not None else uid)]
    if groups:
        options["group_add"] = [str(g) for g in groups]
    if merged.get("readOnlyRootFilesystem"):
        options["read_only"] = True
    capabilities = merged.get("capabilities") or {}
    if capabilities.get("drop"):
        options["cap_drop"] = [str(c) for c in capabilities["drop"]]
    if capabilities.get("add"):
        options["cap_add"] = [str(c) for c in capabilities["add"]]
    security_opt = []
    if merged.get("allowPrivilegeEscalation") is False:
        security_opt.append("no-new-privileges")
    seccomp = (merged.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        security_opt.append("seccomp=unconfined")
    elif seccomp != "RuntimeDefault":
        raise PrimageError(
            f"seccomp profile {seccomp} has no local stand-in", file=where, field=f"{prefix}.securityContext"
        )
    if (merged.get("appArmorProfile") or {}).get("type") == "Unconfined":
        security_opt.append("apparmor=unconfined")
    if security_opt:
        options["security_opt"] = security_opt
    return options


def _resources(resources: dict, where: str, prefix: str) -> dict:
    """Limits as the engine's hard limits, requests as its relative weight and soft reservation."""
    options: dict = {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    for name in {*limits, *requests} - {"cpu", "memory", "ephemeral-storage"}:
        raise PrimageError(
            f"the extended resource {name} (a device plugin of a cluster) has no local stand-in",
            file=where,
            field=f"{prefix}.resources",
        )
    if "cpu" in limits:
        options["nano_cpus"] = int(quantity(limits["cpu"], f"{prefix}.resources.limits.cpu") * 1e9)
    if "memory" in limits:
        options["mem_limit"] = int(quantity(limits["memory"], f"{prefix}.resources.limits.memory"))
    if "cpu" in requests:
        # The kubelet's own mapping of a CPU request to cgroup shares.
        millicores = quantity(requests["cpu"], f"{prefix}.resources.requests.cpu") * 1000
        options["cpu_shares"] = max(2, int(millicores * 1024 / 1000))
    if "memory" in requests:
        options["mem_reservation"] = int(quantity(requests["memory"], f"{prefix}.resources.requests.memory"))
    return options


def _environment(container: dict, objects: dict, pod_template: dict, where: str, prefix: str) -> dict[str, str]:
    if container.get("envFrom"):
        raise PrimageError("envFrom has no local stand-in; list the variables", file=where, field=f"{prefix}.envFrom")
    environment: dict[str, str] = {}
    for entry in container.get("env") or []:
        name = entry["name"]
        if "value" in entry or "valueFrom" not in entry:
            environment[name] = str(entry.get("value", ""))
            continue
        source = entry["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = (objects.get(("ConfigMap", ref["name"])) or {}).get("data") or {}
            if ref["key"] not in data:
                raise PrimageError(
                    f"{name} reads key {ref['key']} of ConfigMap {ref['name']}, which the workload does not hold",
                    file=where,
                    field=f"{prefix}.env[{name}]",
                )
            environment[name] = str(data[ref["key"]])
        elif "fieldRef" in source and source["fieldRef"].get("fieldPath") in ("metadata.namespace",):
            environment[name] = str((pod_template.get("metadata") or {}).get("namespace", ""))
        else:
            kind = next(iter(source), "valueFrom")
            reason = (
                "the engine shows a container's environment to anyone who can inspect it: secrets reach a local "
                "container only as files"
                if kind == "secretKeyRef"
                else "it has no local stand-in"
            )
            raise PrimageError(f"{name} comes from {kind}: {reason}", file=where, field=f"{prefix}.env[{name}]")
    return environment


def _mount(mount, volumes, objects, files_dir, claim_prefix, plan, where, prefix) -> dict:
    """One volumeMount as keyword arguments of docker.types.Mount."""
    name = mount["name"]
    volume = volumes.get(name)
    here = f"{prefix}.volumeMounts[{name}]"
    if volume is None:
        raise PrimageError(f"the mount names the volume {name}, which the pod does not declare", file=where, field=here)
    target, read_only = mount["mountPath"], bool(mount.get("readOnly"))
    sub_path = mount.get("subPath") or ""
    if "hostPath" in volume:
        source = _host_path(volume["hostPath"], where, f"spec.template.spec.volumes[{name}]")
        wanted = _PROPAGATION.get(mount.get("mountPropagation", "None"), "rprivate")
        propagation = wanted if wanted == "rprivate" or _propagates(source) else "rprivate"
        return _bind(Path(source, sub_path), target, read_only, propagation)
    if "emptyDir" in volume:
        if sub_path:
            raise PrimageError("subPath of an emptyDir has no local stand-in", file=where, field=here)
        size = volume["emptyDir"].get("sizeLimit")
        mount_options = {"type": "tmpfs", "target": target, "tmpfs_mode": 0o1777}
        if size:
            mount_options["tmpfs_size"] = int(quantity(size, f"spec.template.spec.volumes[{name}].emptyDir.sizeLimit"))
        return mount_options
    if "configMap" in volume or "secret" in volume:
        folder = _volume_files(name, volume, objects, files_dir, plan, where)
        return _bind(folder / sub_path if sub_path else folder, target, True, "rprivate")
    if "persistentVolumeClaim" in volume:
        if sub_path:
            raise PrimageError("subPath of a claim has no local stand-in", file=where, field=here)
        claim = f"{claim_prefix}-{volume['persistentVolumeClaim']['claimName']}"
        plan.claims.append(claim)
        return {"type": "volume", "source": claim, "target": target, "read_only": read_only}
    kind = next((k for k in volume if k != "name"), "?")
    raise PrimageError(
        f"a {kind} volume has no local stand-in (hostPath, emptyDir, configMap, secret and claims have)",
        file=where,
        field=f"spec.template.spec.volumes[{name}]",
    )


def _bind(source: Path, target: str, read_only: bool, propagation: str) -> dict:
    return {
        "type": "bind",
        "source": str(source),
        "target": target,
        "read_only": read_only,
        "propagation": propagation,
    }


def _host_path(host_path: dict, where: str, field_name: str) -> str:
    path, kind = host_path["path"], host_path.get("type", "")
    if kind == "DirectoryOrCreate":
        Path(path).mkdir(parents=True, exist_ok=True)
    elif kind == "Directory" and not Path(path).is_dir():
        raise PrimageError(
            f"the host folder {path} does not exist (hostPath type Directory)", file=where, field=field_name
        )
    elif kind in ("File", "Socket", "CharDevice", "BlockDevice") and not Path(path).exists():
        raise PrimageError(f"{path} does not exist (hostPath type {kind})", file=where, field=field_name)
    return path


def _propagates(source: str) -> bool:
    """Whether the host mount holding `source` is shared or a slave: the engine refuses slave
    propagation on a private mount (a container's root, many a CI machine), where nothing remounts."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    real = os.path.realpath(source)
    best, best_fields = "", []
    for line in lines:
        parts = line.split(" - ")[0].split()
        if len(parts) < 5:
            continue
        point = parts[4].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_fields = point, parts[6:]
    return any(f.startswith(("shared:", "master:")) for f in best_fields)


def _volume_files(name, volume, objects, files_dir, plan, where) -> Path:
    """The files of a configMap or secret volume, as the kubelet lays them out."""
    secret = "secret" in volume
    source = volume["secret" if secret else "configMap"]
    object_name = source.get("secretName" if secret else "name")
    kind = "Secret" if secret else "ConfigMap"
    definition = objects.get((kind, object_name))
    if definition is None:
        if source.get("optional"):
            return _folder(files_dir / name)
        raise PrimageError(
            f"the volume {name} reads {kind} {object_name}, which the workload does not hold",
            file=where,
            field=f"spec.template.spec.volumes[{name}]",
        )
    data = {key: str(value).encode() for key, value in (definition.get("data") or {}).items()}
    if secret:
        data = {key: base64.b64decode(value) for key, value in data.items()}
        data.update({k: str(v).encode() for k, v in (definition.get("stringData") or {}).items()})
    data.update({k: base64.b64decode(v) for k, v in (definition.get("binaryData") or {}).items()})
    mode = int(source.get("defaultMode", SECRET_DEFAULT_MODE if secret else CONFIGMAP_DEFAULT_MODE))
    folder = files_dir / name
    items = source.get("items")
    chosen = [(i["key"], i.get("path", i["key"]), int(i.get("mode", mode))) for i in items] if items else None
    for key, relative, item_mode in chosen or [(key, key, mode) for key in data]:
        if key not in data:
            raise PrimageError(f"{kind} {object_name} has no key {key}", file=where, field=f"volumes[{name}].items")
        plan.files.append(VolumeFile(folder / relative, data[key], item_mode, secret))
    return folder


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_files(plan: ContainerPlan) -> None:
    """Write the configMap and secret files, readable by the container's user and no one else
    for secrets (owned by it when we may give files away, as the kubelet's fsGroup does)."""
    for item in plan.files:
        item.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        temporary = item.path.with_name(f".{item.path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(item.data)
        if plan.user and os.geteuid() == 0:
            os.chown(temporary, *plan.user)
            os.chown(item.path.parent, *plan.user)
        elif item.secret and plan.user and os.geteuid() != plan.user[0]:
            temporary.unlink()
            raise PrimageError(
                f"the container runs as uid {plan.user[0]} and must read its secret file, which only its owner may "
                f"read: run primage as root or as uid {plan.user[0]}",
                file=item.path,
            )
        os.chmod(temporary, item.mode)
        os.replace(temporary, item.path)
