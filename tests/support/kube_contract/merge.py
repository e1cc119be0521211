"""Patch semantics: JSON merge patch, strategic merge patch (approximated) and server-side apply.

* `application/merge-patch+json` follows RFC 7386 exactly: objects merge recursively,
  `null` deletes a member, anything else (lists included) replaces.
* `application/strategic-merge-patch+json` is approximated as a merge patch that also
  merges the lists Kubernetes declares with a patch merge key (containers and volumes by
  `name`, volumeMounts by `mountPath`, ports by `containerPort`/`port`, ...) and honours
  the `$patch: delete|replace` directives; other `$` directives are ignored.
* `application/apply-patch+yaml` (server-side apply) merges the applied configuration
  into the live object the same way, then removes what the same field manager applied
  before but no longer applies (unless another manager owns it). Ownership is recorded
  in `metadata.managedFields` as FieldsV1 sets, as the real server does. Conflicts
  between managers are not detected (every apply behaves as if `force=true`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

# Lists merged by key in strategic merge patches and server-side apply (field name -> key).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
}

# Top-level and metadata fields that identify an object rather than belong to a manager.
IDENTITY_FIELDS = {"apiVersion", "kind"}
IDENTITY_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
}


def merge_key(field: str | None, items: list) -> str | None:
    """The key a list field is merged by, or None for an atomic list."""
    if not field or not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports":
        return "containerPort" if any("containerPort" in i for i in items) else "port"
    key = MERGE_KEYS.get(field)
    if key and all(key in i for i in items if i.get("$patch") != "delete" or key in i):
        return key
    return None


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        clean = {k: v for k, v in patch.items() if not k.startswith("$")}
        if directive == "replace":
            return copy.deepcopy(clean)
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for key, value in clean.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value, key)
        return result
    if isinstance(patch, list):
        key = merge_key(field, list(patch) + (target if isinstance(target, list) else []))
        if key is None or not isinstance(target, list):
            return [
                strategic_merge_patch(None, item) if isinstance(item, dict) else copy.deepcopy(item)
                for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "delete")
            ]
        result = copy.deepcopy(target)
        for item in patch:
            index = next((n for n, live in enumerate(result) if live.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del result[index]
            elif index is None:
                result.append(strategic_merge_patch(None, item))
            else:
                result[index] = strategic_merge_patch(result[index], item)
        return result
    return copy.deepcopy(patch)


# --- server-side apply ----------------------------------------------------------------------


def _item_key(key: str, item: dict) -> str:
    return "k:" + json.dumps({key: item.get(key)}, separators=(",", ":"), sort_keys=True)


def field_set(value: Any, field: str | None = None) -> dict:
    """The FieldsV1 set of an applied configuration (what a manager claims)."""
    if isinstance(value, dict):
        return {f"f:{k}": field_set(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        key = merge_key(field, value)
        if key:
            return {_item_key(key, item): {".": {}, **field_set(item)} for item in value}
    return {}


def object_field_set(config: dict) -> dict:
    """field_set() of a whole object, without the fields that only identify it."""
    fields = field_set({k: v for k, v in config.items() if k not in IDENTITY_FIELDS and k != "status"})
    metadata = fields.get("f:metadata")
    if metadata is not None:
        for name in IDENTITY_METADATA:
            metadata.pop(f"f:{name}", None)
        if not metadata:
            fields.pop("f:metadata")
    return fields


def union(sets: list[dict]) -> dict:
    result: dict = {}
    for one in sets:
        for key, sub in one.items():
            result[key] = union([result.get(key, {}), sub])
    return result


def _apply_merge(live: Any, config: Any, field: str | None) -> Any:
    if isinstance(config, dict):
        result = copy.deepcopy(live) if isinstance(live, dict) else {}
        for key, value in config.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = _apply_merge(result.get(key), value, key)
        return result
    if isinstance(config, list) and isinstance(live, list):
        key = merge_key(field, config + live)
        if key:
            by_key = {json.dumps(item.get(key), sort_keys=True): item for item in live}
            applied = [json.dumps(item.get(key), sort_keys=True) for item in config]
            merged = [_apply_merge(by_key.get(k), item, None) for k, item in zip(applied, config, strict=True)]
            merged.extend(item for k, item in by_key.items() if k not in applied)
            return merged
    return copy.deepcopy(config)


def _prune(live: Any, previous: dict, current: dict, others: dict) -> None:
    """Remove from `live` what was in `previous` but is neither in `current` nor owned by others."""
    for key, sub in previous.items():
        if key == ".":
            continue
        if key.startswith("f:") and isinstance(live, dict):
            name = key[2:]
            if name not in live:
                continue
            if key not in current and key not in others:
                del live[name]
            elif isinstance(live[name], dict | list):
                _prune(live[name], sub, current.get(key, {}), others.get(key, {}))
        elif key.startswith("k:") and isinstance(live, list):
            ((mkey, mval),) = json.loads(key[2:]).items()
            for index, item in enumerate(live):
                if isinstance(item, dict) and item.get(mkey) == mval:
                    if key not in current and key not in others:
                        del live[index]
                    else:
                        _prune(item, sub, current.get(key, {}), others.get(key, {}))
                    break


def server_side_apply(live: dict | None, config: dict, previous: dict, others: dict) -> dict:
    """The object after `config` is applied by a manager that owned `previous` before."""
    result = _apply_merge(live or {}, config, None)
    _prune(result, previous, object_field_set(config), others)
    return result
