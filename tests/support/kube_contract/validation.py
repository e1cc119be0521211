"""What the API server rejects with 422 Invalid (a subset of k8s.io/kubernetes/pkg/apis/*/validation).

Checked: object names (RFC 1123 subdomain/label, RFC 1035 label for Services), label keys
and values, ConfigMap/Secret keys and sizes, pod templates (containers with names and
images, env var sources, volumes referenced by mounts, hostPath types, capabilities,
restart policies), Job completion modes and limits, StatefulSet selectors, Service ports,
types and node ports; and, on update, the fields the real server keeps immutable.
Everything else is left to schema validation (kubernetes-validate) in the tests.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .errors import FieldError, duplicate, forbidden, invalid, not_found, not_supported, required, too_long

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
CONFIG_KEY = r"[-._a-zA-Z0-9]+"
MAX_DATA_BYTES = 1024 * 1024

MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{DNS1123_SUBDOMAIN}')"
)
MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{DNS1123_LABEL}')"
)
MSG_1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    f"regex used for validation is '{DNS1035_LABEL}')"
)
MSG_CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', "
    f" or 'KEY_NAME',  or 'key-name', regex used for validation is '{CONFIG_KEY}')"
)

HOST_PATH_TYPES = [
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
]
SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
NODE_PORT_RANGE = (30000, 32767)


def _full(pattern: str, value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


def name_errors(value: Any, style: str, path: str = "metadata.name") -> list[FieldError]:
    if style == "subdomain":
        ok, msg, limit = _full(DNS1123_SUBDOMAIN, value), MSG_SUBDOMAIN, 253
    elif style == "1035":
        ok, msg, limit = _full(DNS1035_LABEL, value), MSG_1035, 63
    else:
        ok, msg, limit = _full(DNS1123_LABEL, value), MSG_LABEL, 63
    errors = []
    if isinstance(value, str) and len(value) > limit:
        errors.append(invalid(path, value, f"must be no more than {limit} characters"))
    if not ok:
        errors.append(invalid(path, value, msg))
    return errors


def _qualified_key_errors(key: Any, path: str) -> list[FieldError]:
    if not isinstance(key, str):
        return [invalid(path, key, "name part must be a string")]
    prefix, _, name = key.rpartition("/")
    errors = []
    if prefix and (len(prefix) > 253 or not _full(DNS1123_SUBDOMAIN, prefix)):
        errors.append(invalid(path, key, "prefix part " + MSG_SUBDOMAIN))
    if not name or len(name) > 63 or not _full(QUALIFIED_NAME, name):
        errors.append(
            invalid(
                path,
                key,
                "name part must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character, and be no more "
                "than 63 characters",
            )
        )
    return errors


def labels_errors(labels: Any, path: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid(path, labels, "must be a map of strings")]
    errors = []
    for key, value in labels.items():
        errors += _qualified_key_errors(key, path)
        if not isinstance(value, str) or len(value) > 63 or not _full(LABEL_VALUE, value):
            errors.append(
                invalid(
                    f"{path}[{key}]",
                    value,
                    "a valid label must be an empty string or consist of "
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character, and be no more than 63 characters",
                )
            )
    return errors


def metadata_errors(obj: dict, name_style: str) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    errors = name_errors(meta.get("name"), name_style)
    errors += labels_errors(meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            errors.append(invalid("metadata.annotations", annotations, "must be a map of strings"))
        else:
            for key in annotations:
                errors += _qualified_key_errors(key, "metadata.annotations")
    return errors


def _data_errors(data: Any, path: str, encoded: bool) -> tuple[list[FieldError], int]:
    if data is None:
        return [], 0
    if not isinstance(data, dict):
        return [invalid(path, data, "must be a map")], 0
    errors, size = [], 0
    for key, value in data.items():
        if not _full(CONFIG_KEY, key) or len(key) > 253:
            errors.append(invalid(path, key, MSG_CONFIG_KEY))
        if not isinstance(value, str):
            errors.append(invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        if encoded:
            try:
                size += len(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                errors.append(invalid(f"{path}[{key}]", "<value>", "illegal base64 data"))
        else:
            size += len(value.encode())
    return errors, size


def configmap_errors(obj: dict) -> list[FieldError]:
    errors = metadata_errors(obj, "subdomain")
    data_errors, size = _data_errors(obj.get("data"), "data", encoded=False)
    binary_errors, binary_size = _data_errors(obj.get("binaryData"), "binaryData", encoded=True)
    errors += data_errors + binary_errors
    both = set(obj.get("data") or {}) & set(obj.get("binaryData") or {})
    errors += [duplicate("data", key) for key in sorted(both)]
    if size + binary_size > MAX_DATA_BYTES:
        errors.append(too_long("", MAX_DATA_BYTES))
    return errors


def secret_errors(obj: dict) -> list[FieldError]:
    errors = metadata_errors(obj, "subdomain")
    data_errors, size = _data_errors(obj.get("data"), "data", encoded=True)
    errors += data_errors
    if size > MAX_DATA_BYTES:
        errors.append(too_long("data", MAX_DATA_BYTES))
    kind = obj.get("type", "Opaque")
    data = obj.get("data") or {}
    if kind == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" not in data:
        errors.append(required("data[.dockerconfigjson]"))
    if kind == "kubernetes.io/tls":
        errors += [required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    return errors


def namespace_errors(obj: dict) -> list[FieldError]:
    return metadata_errors(obj, "label")


# --- pods -------------------------------------------------------------------------------------


def _env_errors(env: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for n, var in enumerate(env or []):
        here = f"{path}[{n}]"
        name = var.get("name") if isinstance(var, dict) else None
        if not name:
            errors.append(required(f"{here}.name"))
        elif not re.fullmatch(r"[ -~]+", name) or "=" in name:
            errors.append(
                invalid(
                    f"{here}.name",
                    name,
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                )
            )
        source = var.get("valueFrom") if isinstance(var, dict) else None
        if source is not None:
            if var.get("value"):
                errors.append(invalid(f"{here}.valueFrom", "", "may not be specified when `value` is not empty"))
            refs = [
                k
                for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
                if source.get(k) is not None
            ]
            if len(refs) != 1:
                errors.append(
                    invalid(
                        f"{here}.valueFrom",
                        "",
                        "must specify exactly one of: `fieldRef`, "
                        "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                    )
                )
            for ref in ("configMapKeyRef", "secretKeyRef"):
                selector = source.get(ref)
                if selector is not None:
                    if not selector.get("key"):
                        errors.append(required(f"{here}.valueFrom.{ref}.key"))
                    if not selector.get("name"):
                        errors.append(required(f"{here}.valueFrom.{ref}.name"))
            field_ref = source.get("fieldRef")
            if field_ref is not None and not field_ref.get("fieldPath"):
                errors.append(required(f"{here}.valueFrom.fieldRef.fieldPath"))
    return errors


def _volume_errors(volumes: Any, path: str) -> tuple[list[FieldError], set[str]]:
    errors: list[FieldError] = []
    names: set[str] = set()
    sources = (
        "hostPath",
        "emptyDir",
        "configMap",
        "secret",
        "persistentVolumeClaim",
        "projected",
        "downwardAPI",
        "nfs",
        "csi",
        "ephemeral",
        "image",
    )
    for n, volume in enumerate(volumes or []):
        here = f"{path}[{n}]"
        name = volume.get("name")
        errors += name_errors(name, "label", f"{here}.name")
        if name in names:
            errors.append(duplicate(f"{here}.name", name))
        names.add(name)
        present = [s for s in sources if volume.get(s) is not None]
        if len(present) != 1:
            errors.append(
                required(here, "must specify exactly one volume type")
                if not present
                else forbidden(f"{here}.{present[1]}", "may not specify more than 1 volume type")
            )
        host = volume.get("hostPath")
        if host is not None:
            if not str(host.get("path", "")).startswith("/"):
                errors.append(invalid(f"{here}.hostPath.path", host.get("path"), "must be an absolute path"))
            if host.get("type", "") not in HOST_PATH_TYPES:
                errors.append(not_supported(f"{here}.hostPath.type", host.get("type"), HOST_PATH_TYPES))
        for ref in ("configMap", "secret"):
            source = volume.get(ref)
            if source is not None:
                key = "name" if ref == "configMap" else "secretName"
                if not source.get(key):
                    errors.append(required(f"{here}.{ref}.{key}"))
                mode = source.get("defaultMode")
                if mode is not None and not 0 <= mode <= 0o777:
                    errors.append(
                        invalid(
                            f"{here}.{ref}.defaultMode",
                            mode,
                            "must be a number between 0 and 0777 (octal), both inclusive",
                        )
                    )
    return errors, names


def _container_errors(container: dict, path: str, volumes: set[str]) -> list[FieldError]:
    errors = name_errors(container.get("name"), "label", f"{path}.name")
    if not container.get("image"):
        errors.append(required(f"{path}.image"))
    errors += _env_errors(container.get("env"), f"{path}.env")
    mounts: set[str] = set()
    for n, mount in enumerate(container.get("volumeMounts") or []):
        here = f"{path}.volumeMounts[{n}]"
        if mount.get("name") not in volumes:
            errors.append(not_found(f"{here}.name", mount.get("name")))
        mount_path = mount.get("mountPath")
        if not mount_path:
            errors.append(required(f"{here}.mountPath"))
        elif mount_path in mounts:
            errors.append(invalid(f"{here}.mountPath", mount_path, "must be unique"))
        mounts.add(mount_path)
    ports: set = set()
    for n, port in enumerate(container.get("ports") or []):
        number = port.get("containerPort")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errors.append(invalid(f"{path}.ports[{n}].containerPort", number, "must be between 1 and 65535, inclusive"))
        if (number, port.get("protocol", "TCP")) in ports:
            errors.append(duplicate(f"{path}.ports[{n}]", number))
        ports.add((number, port.get("protocol", "TCP")))
    context = container.get("securityContext") or {}
    if context.get("allowPrivilegeEscalation") is False:
        if context.get("privileged"):
            errors.append(
                invalid(
                    f"{path}.securityContext",
                    context,
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        if "SYS_ADMIN" in ((context.get("capabilities") or {}).get("add") or []):
            errors.append(
                invalid(
                    f"{path}.securityContext",
                    context,
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                )
            )
    for verb in ("add", "drop"):
        for n, cap in enumerate((context.get("capabilities") or {}).get(verb) or []):
            if not isinstance(cap, str) or not re.fullmatch(r"[A-Z_]+", cap):
                errors.append(
                    invalid(f"{path}.securityContext.capabilities.{verb}[{n}]", cap, "must be a capability name")
                )
    errors += _resources_errors(container.get("resources") or {}, f"{path}.resources")
    return errors


QUANTITY = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?"
SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def _quantity_value(text: str) -> float:
    match = re.fullmatch(QUANTITY, text)
    if match is None:
        raise ValueError(text)
    number, suffix = match.group(1), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return float(text)
    return float(number) * SUFFIXES.get(suffix, 1)


def _resources_errors(resources: dict, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    parsed: dict[str, dict[str, float]] = {}
    for part in ("requests", "limits"):
        for name, value in (resources.get(part) or {}).items():
            text = str(value)
            if not re.fullmatch(QUANTITY, text):
                errors.append(
                    invalid(
                        f"{path}.{part}[{name}]",
                        value,
                        "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                )
                continue
            parsed.setdefault(part, {})[name] = _quantity_value(text)
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            errors.append(
                invalid(
                    f"{path}.requests",
                    resources["requests"][name],
                    f"must be less than or equal to {name} limit of {resources['limits'][name]}",
                )
            )
    return errors


def pod_template_errors(template: Any, path: str, restart_policies: list[str]) -> list[FieldError]:
    if not isinstance(template, dict):
        return [required(path)]
    errors = labels_errors((template.get("metadata") or {}).get("labels"), f"{path}.metadata.labels")
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return [*errors, required(f"{path}.spec")]
    volume_errors, volumes = _volume_errors(spec.get("volumes"), f"{path}.spec.volumes")
    errors += volume_errors
    containers = spec.get("containers") or []
    if not containers:
        errors.append(required(f"{path}.spec.containers"))
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for n, container in enumerate(spec.get(group) or []):
            errors += _container_errors(container, f"{path}.spec.{group}[{n}]", volumes)
            if container.get("name") in names:
                errors.append(duplicate(f"{path}.spec.{group}[{n}].name", container.get("name")))
            names.add(container.get("name"))
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        if policy is None:
            errors.append(
                required(
                    f"{path}.spec.restartPolicy",
                    "valid values: " + ", ".join(f'"{p}"' for p in restart_policies),
                )
            )
        else:
            errors.append(not_supported(f"{path}.spec.restartPolicy", policy, restart_policies))
    for n, secret in enumerate(spec.get("imagePullSecrets") or []):
        if not secret.get("name"):
            errors.append(required(f"{path}.spec.imagePullSecrets[{n}].name"))
    return errors


# --- workloads ----------------------------------------------------------------------------------


def _selector_matches(selector: Any, labels: dict) -> bool:
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def job_errors(obj: dict) -> list[FieldError]:
    errors = metadata_errors(obj, "subdomain")
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(name, str) and len(name) > 63:
        errors.append(invalid("metadata.name", name, "must be no more than 63 characters"))
    spec = obj.get("spec") or {}
    for field in (
        "parallelism",
        "completions",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
    ):
        value = spec.get(field)
        if value is not None and (
            not isinstance(value, int) or value < 0 or (field == "activeDeadlineSeconds" and value == 0)
        ):
            errors.append(invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        errors.append(not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errors.append(required("spec.completions", "when completion mode is Indexed"))
        if spec.get("backoffLimitPerIndex") is not None:
            for field in ("completions", "parallelism"):
                if isinstance(spec.get(field), int) and spec[field] > 100000:
                    errors.append(
                        invalid(
                            f"spec.{field}",
                            spec[field],
                            "must be less than or equal to 100000 when backoffLimitPerIndex is specified",
                        )
                    )
    else:
        for field in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(field) is not None:
                errors.append(invalid(f"spec.{field}", spec[field], "requires indexed completion mode"))
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errors.append(required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    errors += pod_template_errors(spec.get("template"), "spec.template", ["OnFailure", "Never"])
    if (
        spec.get("backoffLimitPerIndex") is not None
        and ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "Never"
    ):
        errors.append(
            invalid(
                "spec.template.spec.restartPolicy",
                "OnFailure",
                "must be Never when backoffLimitPerIndex is specified",
            )
        )
    if spec.get("manualSelector") and not spec.get("selector"):
        errors.append(required("spec.selector"))
    return errors


def statefulset_errors(obj: dict) -> list[FieldError]:
    errors = metadata_errors(obj, "label")
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        errors.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    policy = spec.get("podManagementPolicy", "OrderedReady")
    if policy not in ("OrderedReady", "Parallel"):
        errors.append(not_supported("spec.podManagementPolicy", policy, ["OrderedReady", "Parallel"]))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        errors.append(required("spec.selector"))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errors.append(invalid("spec.selector", selector, "empty selector is invalid for statefulset"))
    elif not _selector_matches(selector, labels):
        errors.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    errors += pod_template_errors(template, "spec.template", ["Always"])
    for n, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        errors += name_errors(
            (claim.get("metadata") or {}).get("name"),
            "subdomain",
            f"spec.volumeClaimTemplates[{n}].metadata.name",
        )
    return errors


def service_errors(obj: dict, allocated_node_ports: dict[int, str]) -> list[FieldError]:
    errors = metadata_errors(obj, "1035")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind not in SERVICE_TYPES:
        errors.append(not_supported("spec.type", kind, SERVICE_TYPES))
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if kind != "ExternalName" and not ports and not headless:
        errors.append(required("spec.ports"))
    if kind == "ExternalName" and not spec.get("externalName"):
        errors.append(required("spec.externalName"))
    seen_names: set = set()
    seen_ports: set = set()
    me = f"{meta.get('namespace')}/{meta.get('name')}"
    for n, port in enumerate(ports):
        here = f"spec.ports[{n}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errors.append(required(f"{here}.name"))
        if name:
            errors += name_errors(name, "label", f"{here}.name")
            if name in seen_names:
                errors.append(duplicate(f"{here}.name", name))
            seen_names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            errors.append(invalid(f"{here}.port", number, "must be between 1 and 65535, inclusive"))
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            errors.append(not_supported(f"{here}.protocol", protocol, ["SCTP", "TCP", "UDP"]))
        if (number, protocol) in seen_ports:
            errors.append(duplicate(here, {"port": number, "protocol": protocol}))
        seen_ports.add((number, protocol))
        node_port = port.get("nodePort")
        if node_port is not None:
            if kind not in ("NodePort", "LoadBalancer"):
                errors.append(forbidden(f"{here}.nodePort", f"may not be used when `type` is '{kind}'"))
            elif not isinstance(node_port, int) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errors.append(
                    invalid(
                        f"{here}.nodePort",
                        node_port,
                        "provided port is not in the valid range. "
                        f"The range of valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    )
                )
            elif allocated_node_ports.get(node_port, me) != me:
                errors.append(invalid(f"{here}.nodePort", node_port, "provided port is already allocated"))
        target = port.get("targetPort")
        if isinstance(target, int) and not 1 <= target <= 65535:
            errors.append(invalid(f"{here}.targetPort", target, "must be between 1 and 65535, inclusive"))
    errors += labels_errors(spec.get("selector"), "spec.selector")
    return errors


# --- updates ------------------------------------------------------------------------------------


def update_errors(kind: str, old: dict, new: dict) -> list[FieldError]:
    """Fields the real API server refuses to change on an existing object."""
    errors: list[FieldError] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind in ("ConfigMap", "Secret"):
        if old.get("immutable"):
            if new.get("immutable") is not True:
                errors.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            for field in ("data", "binaryData"):
                if (old.get(field) or {}) != (new.get(field) or {}):
                    errors.append(forbidden(field, "field is immutable when `immutable` is set"))
        if kind == "Secret" and old.get("type", "Opaque") != new.get("type", "Opaque"):
            errors.append(invalid("type", new.get("type"), "field is immutable"))
    elif kind == "Job":
        for field in (
            "template",
            "completionMode",
            "backoffLimitPerIndex",
            "selector",
            "manualSelector",
            "podFailurePolicy",
            "successPolicy",
        ):
            if old_spec.get(field) != new_spec.get(field):
                errors.append(invalid(f"spec.{field}", new_spec.get(field), "field is immutable"))
        if old_spec.get("completions") != new_spec.get("completions"):
            elastic = new_spec.get("completionMode") == "Indexed" and new_spec.get("completions") == new_spec.get(
                "parallelism"
            )
            if not elastic:
                errors.append(invalid("spec.completions", new_spec.get("completions"), "field is immutable"))
    elif kind == "StatefulSet":
        mutable = {
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        }
        changed = {k for k in set(old_spec) | set(new_spec) if k not in mutable and old_spec.get(k) != new_spec.get(k)}
        if changed:
            errors.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', "
                    "'ordinals', 'template', 'updateStrategy', "
                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                    "are forbidden",
                )
            )
    elif kind == "Service":
        old_ip, new_ip = old_spec.get("clusterIP"), new_spec.get("clusterIP")
        if old_ip and new_ip and old_ip != new_ip and old_spec.get("type") != "ExternalName":
            errors.append(invalid("spec.clusterIPs[0]", [new_ip], "may not change once set"))
    return errors
