"""Pod overrides of the kubernetes backend: what a site adds to every pod the command creates.

    # --pod-overrides FILE (YAML)
    nodeSelector: {primage.eu/storage: onedata}
    tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
    volumes: [{name: provider-ca, configMap: {name: provider-ca}}]
    volumeMounts: [{name: provider-ca, mountPath: /etc/ssl/provider, readOnly: true}]
    env: [{name: PRIMAGE_ONEDATA_OPTIONS, value: "--insecure"}]

`nodeSelector` is merged into the pods' own, `tolerations` and `volumes` are appended to the pod,
`volumeMounts` and `env` to the application's container (the first). Nothing of the rendered pod is
replaced: a name the pod already has (a volume, a variable) is refused, and so is any other key.
The API server checks the objects themselves when the pods are created. The file holds no secret
(a token belongs in the Onedata config or a Secret) and is read again on every submission.
"""

from __future__ import annotations

import copy
from pathlib import Path

from .. import yamlio
from ..errors import PrimageError

LISTS = {"tolerations": "pod", "volumes": "pod", "volumeMounts": "container", "env": "container"}
MAPPINGS = {"nodeSelector": "pod"}
KEYS = {**LISTS, **MAPPINGS}
NAMED = {"volumes": "name", "volumeMounts": "mountPath", "env": "name"}


def load(path: Path) -> dict:
    """The overrides of a file, each checked; an error names the file, the line and the field."""
    data, lines = yamlio.load_file(path)  # a missing or unreadable file, a YAML error: named by yamlio
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PrimageError(f"expected a mapping of {', '.join(sorted(KEYS))}", file=path, line=lines.line_of())
    for key, value in data.items():
        where = {"file": path, "line": lines.line_of(key), "field": str(key)}
        if key not in KEYS:
            raise PrimageError(f"unknown key '{key}' (expected {', '.join(sorted(KEYS))})", **where)
        if key in MAPPINGS:
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise PrimageError(f"{key}: expected a mapping of label names to string values", **where)
            continue
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise PrimageError(f"{key}: expected a list of mappings (Kubernetes {key} entries)", **where)
        field = NAMED.get(key)
        for number, item in enumerate(value):
            if field and not isinstance(item.get(field), str):
                raise PrimageError(
                    f"{key}[{number}]: every entry needs a '{field}' string",
                    file=path,
                    line=lines.line_of(key, number),
                    field=f"{key}[{number}].{field}",
                )
    return data


def apply(template: dict, overrides: dict, source: str = "the pod overrides") -> dict:
    """The pod template (a Job's or a StatefulSet's spec.template) with the overrides added, in place."""
    if not overrides:
        return template
    spec = template["spec"]
    (container, *_) = spec["containers"]
    for key, value in overrides.items():
        target = spec if KEYS[key] == "pod" else container
        if key in MAPPINGS:
            taken = sorted(set(target.get(key) or {}) & set(value))
            if taken:
                raise PrimageError(f"{source}: {key} {', '.join(taken)} is already set by the workload")
            target[key] = {**(target.get(key) or {}), **value}
            continue
        field = NAMED.get(key)
        existing = target.get(key) or []
        if field:
            taken = sorted({item[field] for item in existing} & {item[field] for item in value})
            if taken:
                raise PrimageError(f"{source}: {key} {', '.join(taken)} is already in the workload's pods")
        target[key] = [*existing, *copy.deepcopy(value)]
    return template
