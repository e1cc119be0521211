"""Run an Onedata variant (the `<application tag>-onedata` images) the way the roles' pod mode runs
it, on the local Docker engine: the container's security context, environment and volumes are
read from the workload the roles render (primage.workloads, pod mode), never written here again.

    user 0:0 (runAsUser/runAsGroup)      --user 0:0
    capabilities drop ALL, add ...       --cap-drop ALL --cap-add SYS_ADMIN --cap-add SETUID ...
    allowPrivilegeEscalation false       --security-opt no-new-privileges
    fsGroup                              --group-add <fsGroup>
    readOnlyRootFilesystem               --read-only
    an emptyDir volume                   -v <a new host folder, root:fsGroup 2777, as the kubelet makes it>
    the FUSE device plugin's resource    --device /dev/fuse (what the plugin grants)
    env (the token from the Secret)      --env-file <a 0600 file>: no token on a command line

The space is the stub oneclient's (ansible/roles/oneclient/molecule/default/stub-packages/): a
host folder bound at ONECLIENT_STUB_BACKING_DIR, which the stub mounts with bindfs (FUSE) at the
mount point. The pod drops CAP_DAC_OVERRIDE, so root's bindfs writes that folder only as its
owner (root); `--opt force-user/force-group` makes it show every file as the application's user,
as a space the token's user owns looks through oneclient.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from primage import workloads

STUB_BACKING = "/var/lib/oneclient-stub"  # the stub's ONECLIENT_STUB_BACKING_DIR default
APP_UID = APP_GID = 1000  # the roles' run_as_user/run_as_group defaults, the images' user
# The entrypoint's exit codes (containers/onedata/entrypoint.sh).
EX_CONFIG, EX_PRIVILEGES, EX_FUSE, EX_ONECLIENT, EX_TIMEOUT = 80, 81, 82, 83, 84
# The role that runs each application in a cluster; any other application gets htc_batch's
# contract (kubernetes_app renders the Onedata wiring of both alike).
ROLE_OF = {"segmentation": "htc_batch", "jupyter": "jupyter"}


def given(variable: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        pytest.fail(
            f"{variable} is not set: run `primage images build APPLICATION` and `primage images test "
            "APPLICATION+onedata` (the pipeline sets PRIMAGE_TEST_IMAGE, PRIMAGE_TEST_APPLICATION and "
            "PRIMAGE_TEST_APPLICATION_IMAGE for the variant's test build)"
        )
    return value


@dataclass
class Pod:
    """What one rendered pod asks of its container: docker run options, environment, volume mounts."""

    options: list[str]
    env: dict[str, str]
    empty_dirs: list[str]  # mount paths of emptyDir volumes
    mounts: dict[str, str]  # volume name -> mount path (ConfigMaps, Secrets, claims: the test binds them)
    mount_point: str
    fs_group: int
    container: dict = field(repr=False, default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(repr=False, default_factory=dict)  # volume -> its files

    def write_config_map(self, volume: str, folder: Path) -> Path:
        """The files of the ConfigMap behind `volume`, as rendered, written into `folder` to be bound there."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.config_maps[volume].items():
            (folder / name).write_text(text)
        return folder

    def run_options(self, base: Path, extra_env: dict[str, str] | None = None) -> list[str]:
        """docker run options of the pod, its environment file and emptyDirs made fresh under `base`."""
        base.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="pod-", dir=base))
        env_file = folder / "pod.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {**self.env, **(extra_env or {})}.items()))
        env_file.chmod(0o600)
        volumes = []
        for index, path in enumerate(self.empty_dirs):
            empty = folder / f"empty-dir-{index}"
            empty.mkdir()
            os.chown(empty, 0, self.fs_group)
            empty.chmod(0o2777)  # the kubelet's emptyDir, group-owned by fsGroup
            volumes += ["-v", f"{empty}:{path}"]
        return [*self.options, *volumes, "--env-file", str(env_file)]


def render_pod(role: str, values: dict, token: str, other_secrets: dict | None = None) -> Pod:
    """The pod-mode workload of `role` rendered with `values`; its one pod's container as docker options."""
    workload = workloads.render(
        role, {f"{role}_onedata_mode": "pod", **values}, {f"{role}_onedata_token": token, **(other_secrets or {})}
    )
    kind = "Job" if workload.of_kind("Job") else "StatefulSet"
    (manifest,) = workload.of_kind(kind)
    spec = manifest.definition["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    context, pod_context = container["securityContext"], spec["securityContext"]
    assert context["privileged"] is False, "the pod mode is never privileged"
    options = ["--user", f"{pod_context['runAsUser']}:{pod_context['runAsGroup']}"]
    options += [f"--cap-drop={cap}" for cap in context["capabilities"].get("drop", [])]
    options += [f"--cap-add={cap}" for cap in context["capabilities"].get("add", [])]
    options += ["--group-add", str(pod_context["fsGroup"])]
    if context.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]  # what the kubelet sets: no_new_privs
    if context.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if context.get("appArmorProfile", {}).get("type") == "Unconfined" and Path("/sys/module/apparmor").exists():
        options += ["--security-opt", "apparmor=unconfined"]
    extended = [name for name in container["resources"]["limits"] if "/" in name]
    assert extended, "pod mode requests the FUSE device plugin's resource"
    options += ["--device", "/dev/fuse"]  # what the device plugin grants for that resource
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    rendered = {m.name: m.definition.get("data", {}) for m in workload.of_kind("ConfigMap")}
    config_maps = {
        name: rendered[volume["configMap"]["name"]] for name, volume in volumes.items() if "configMap" in volume
    }
    mounts, empty_dirs = {}, []
    for mount in container["volumeMounts"]:
        if "emptyDir" in volumes[mount["name"]]:
            empty_dirs.append(mount["mountPath"])
        else:
            mounts[mount["name"]] = mount["mountPath"]
    env = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:  # from the onedata-token Secret: the only secretKeyRef the pod mode sets
            assert entry["valueFrom"]["secretKeyRef"]["name"] == "onedata-token"
            env[entry["name"]] = token
    return Pod(
        options, env, empty_dirs, mounts, env["ONECLIENT_MOUNT_POINT"], pod_context["fsGroup"], container, config_maps
    )


def application_pod(application: str, application_image: str, variant: str, token: str, **values) -> Pod:
    """The pod the application's role renders in pod mode, running the variant under test."""
    role = ROLE_OF.get(application, "htc_batch")
    base = {
        "htc_batch": {"htc_batch_image": application_image, "htc_batch_onedata_image": variant,
                      "htc_batch_inputs": ["inputs/case-001.nii.gz"]},
        # HTTPS is the application image's own (tests/images/jupyter, and the jupyter scenario on
        # the cluster); the variant adds the mount, which these tests drive over loopback HTTP.
        "jupyter": {"jupyter_image": application_image, "jupyter_onedata_image": variant,
                    "jupyter_home_dir": "/home/primage", "jupyter_tls_enabled": False},
    }[role]  # fmt: skip
    provider = {f"{role}_onedata_provider_host": "plg-cyfronet-01.datahub.egi.eu"}
    other = {"jupyter_token": secrets.token_hex(24)} if role == "jupyter" else {}
    return render_pod(role, {**base, **provider, **values}, token, other)


def stub_options() -> dict[str, str]:
    """Environment of the stub oneclient's space: every file shown as the application's user."""
    return {"PRIMAGE_ONEDATA_OPTIONS": f"--opt force-user={APP_UID} --opt force-group={APP_GID}"}


def new_token() -> str:
    """A throwaway token, random so that finding it anywhere means it leaked there."""
    return "MDAx-test-" + secrets.token_urlsafe(32)


def host_processes(container: str) -> list[dict]:
    """The container's processes as the host sees them: pid, uid, argv, environment (root reads all)."""
    top = subprocess.run(["docker", "top", container, "-eo", "pid"], capture_output=True, text=True, check=True)
    found = []
    for line in top.stdout.splitlines()[1:]:
        pid = line.strip()
        proc = Path("/proc") / pid
        try:
            status = (proc / "status").read_text()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
        found.append(
            {
                "pid": int(pid),
                "uid": uid,
                "argv": [a.decode(errors="replace") for a in argv if a],
                "environ": [e.decode(errors="replace") for e in environ if e],
            }
        )
    return found


def fuse_mounts(container: str) -> list[str]:
    """Mount points of FUSE file systems in the container's mount namespace."""
    pid = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Pid}}", container], capture_output=True, text=True, check=True
    ).stdout.strip()
    mountinfo = (Path("/proc") / pid / "mountinfo").read_text()
    found = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        if after.split()[0].startswith("fuse"):
            found.append(before.split()[4])
    return found
