"""A pod that mounts an application's Onedata space and runs one command in it, for the kubernetes backend.

`--onedata SPACE` leaves no folder of the space on this machine: the pods mount it (pod mode,
the application's Onedata variant). What the command needs to see of the space it asks such a
pod: the files matching --files and the results already complete before a submission
(primage.apps.listing), the result folders to remove when an application is deleted. The pod is
the application's own pod template (as rendered, or as its Job holds it), so it mounts the space
exactly as the tasks do: the same variant image, token Secret, FUSE device, security context and
pod overrides; only its command differs (the variant's entrypoint runs it as the application's
user after mounting) and it carries no input list. It is deleted once its log is read; the log
holds oneclient's messages and the command's output, never the token.
"""

from __future__ import annotations

import copy
import secrets
import time

from ..errors import PrimageError
from . import listing

SPACE_POD_TIMEOUT = 300.0
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "space"
# The variant entrypoint's own exit codes (containers/onedata/entrypoint.sh).
ENTRYPOINT_EXITS = {
    80: "the pod's Onedata settings are wrong",
    81: "the pod lacks the privileges to mount (SYS_ADMIN, SETUID, SETGID, root at start)",
    82: "the pod has no FUSE device (the cluster's FUSE device plugin)",
    83: "oneclient failed (provider, token or network)",
    84: "the space did not answer in time",
    85: "the space could not be unmounted cleanly",
}

REMOVE_SCRIPT = r"""
cd -- "$1" || exit 3
root=$2
shift 2
removed=0
for folder in "$@"; do
  if [ -d "$folder" ]; then rm -rf -- "$folder" && removed=$((removed + 1)); fi
done
[ -d "$root" ] && find "$root" -depth -type d -empty -delete
echo "@@primage-removed $removed"
"""


def quantities_as_strings(body):
    """The object with every resource quantity a string, as the Python client's models want them
    (`primage.eu/fuse: 1` in the rendered YAML is an int: the API server takes both, the client not)."""
    if isinstance(body, list):
        return [quantities_as_strings(item) for item in body]
    if not isinstance(body, dict):
        return body
    copied = {}
    for key, value in body.items():
        if key == "resources" and isinstance(value, dict):
            value = {
                part: {name: str(amount) for name, amount in amounts.items()}
                if part in ("limits", "requests") and isinstance(amounts, dict)
                else amounts
                for part, amounts in value.items()
            }
        copied[key] = quantities_as_strings(value)
    return copied


def mount_point(template: dict) -> str:
    """Where the pod template's container sees the space (the variant's ONECLIENT_MOUNT_POINT)."""
    (container, *_) = template["spec"]["containers"]
    for item in container.get("env") or []:
        if item.get("name") == "ONECLIENT_MOUNT_POINT" and item.get("value"):
            return item["value"]
    raise PrimageError(
        "the workload's pods do not mount a Onedata space themselves (no ONECLIENT_MOUNT_POINT): pod mode expected"
    )


def space_pod(template: dict, namespace: str, application: str, argv: list[str]) -> dict:
    """A Pod from the application's pod template that runs `argv` in place of the application."""
    spec = copy.deepcopy(template["spec"])
    config_maps = {v["name"] for v in spec.get("volumes") or [] if "configMap" in v}
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v["name"] not in config_maps]
    spec["restartPolicy"] = "Never"
    spec["activeDeadlineSeconds"] = int(SPACE_POD_TIMEOUT)
    (container, *_) = spec["containers"]
    container.pop("command", None)  # the variant's entrypoint mounts the space, then runs the arguments
    container["args"] = argv
    container["volumeMounts"] = [m for m in container.get("volumeMounts") or [] if m["name"] not in config_maps]
    labels = {
        "app.kubernetes.io/name": application,
        "app.kubernetes.io/part-of": "primage",
        COMPONENT_LABEL: COMPONENT,
    }
    name = f"{application}-space-{secrets.token_hex(3)}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def run(backend, template: dict, namespace: str, application: str, argv: list[str], what: str) -> str:
    """Create the pod, wait until it ends, return its log; delete it whatever happens."""
    body = quantities_as_strings(space_pod(template, namespace, application, argv))
    name = body["metadata"]["name"]
    core = backend.core()
    backend.call(f"create the pod {namespace}/{name} to {what}", core.create_namespaced_pod, namespace, body)
    try:
        pod = _wait(backend, namespace, name, what)
        log = backend.call(
            f"read the log of the pod {namespace}/{name}",
            core.read_namespaced_pod_log,
            name,
            namespace,
            container=body["spec"]["containers"][0]["name"],
            missing_ok=True,
        )
        if pod.status.phase != "Succeeded":
            raise PrimageError(f"could not {what}: {_failure(pod, log or '')}")
        return log or ""
    finally:
        backend.call(
            f"delete the pod {namespace}/{name}",
            core.delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=0,
            missing_ok=True,
        )


def _wait(backend, namespace: str, name: str, what: str):
    from .kube import POLL_SECONDS, STUCK_REASONS

    deadline = time.monotonic() + SPACE_POD_TIMEOUT + 30
    while True:
        pod = backend.call(f"read the pod {namespace}/{name}", backend.core().read_namespaced_pod, name, namespace)
        if pod.status.phase in ("Succeeded", "Failed"):
            return pod
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason in STUCK_REASONS:
                raise PrimageError(f"could not {what}: the pod {name} is stuck ({waiting.reason}: {waiting.message})")
        if time.monotonic() > deadline:
            raise PrimageError(
                f"could not {what}: the pod {name} did not end within {SPACE_POD_TIMEOUT:.0f} s "
                f"(phase {pod.status.phase}; kubectl -n {namespace} describe pod {name} while it runs)"
            )
        time.sleep(POLL_SECONDS)


def _failure(pod, log: str) -> str:
    code = None
    for status in pod.status.container_statuses or []:
        terminated = status.state.terminated if status.state else None
        if terminated is not None:
            code = terminated.exit_code
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    told = lines[-1][:300] if lines else (pod.status.message or pod.status.reason or "no log")
    meaning = ENTRYPOINT_EXITS.get(code, f"exit code {code}" if code is not None else f"phase {pod.status.phase}")
    return f"{meaning}; the pod said: {told}"


def list_space(backend, template: dict, namespace: str, application: str, space: str, pattern: str, output: str):
    """The Listing of a Onedata space as the application's pods see it."""
    mount = mount_point(template)
    argv = listing.local_argv(mount, pattern, output)
    log = run(backend, template, namespace, application, argv, f"list the Onedata space {space}")
    return listing.parse(log, f"the Onedata space {space}")


def remove_results(backend, template: dict, namespace: str, application: str, output: str, folders: list[str]) -> int:
    """Remove the result folders (relative to the space) and the folders they leave empty below `output`."""
    argv = ["/bin/sh", "-c", REMOVE_SCRIPT.strip() + "\n", "sh", mount_point(template), output, *folders]
    log = run(backend, template, namespace, application, argv, f"remove the results of {application}")
    for line in log.splitlines():
        if line.startswith("@@primage-removed "):
            return int(line.split()[1])
    raise PrimageError(f"the removal of the results of {application} did not report its end")
