"""Bring the one-node test cluster up and down, and say how it is.

`up` records the host first (kernel settings, iptables chains, fixed-path folders), then
starts containerd, etcd, the control plane, the kubelet and kube-proxy as processes of this
host, and waits until the node is Ready and pods can be admitted. Any failure on the way
takes everything down again. `down` stops exactly the processes it recorded (pid and start
time), the containers of its own containerd, and undoes what the components did to the host.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .. import engine, paths
from ..errors import PrimageError
from . import components, config, host, oci, pki
from .config import Layout, Settings

START_ORDER = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
)
READY_TIMEOUT = 120.0


@dataclass
class ClusterState:
    """What `up` recorded: enough for `down` to undo it, even from another process."""

    settings: dict
    host: dict
    processes: list[dict] = field(default_factory=list)
    phase: str = "starting"
    started: str = ""
    timings: dict = field(default_factory=dict)

    def settings_object(self) -> Settings:
        return Settings(**self.settings)

    def process_objects(self) -> list[host.Process]:
        return [host.Process(**entry) for entry in self.processes]


def load_state(layout: Layout) -> ClusterState | None:
    if not layout.state_file.is_file():
        return None
    return ClusterState(**json.loads(layout.state_file.read_text()))


def save_state(layout: Layout, state: ClusterState) -> None:
    layout.state_file.parent.mkdir(parents=True, exist_ok=True)
    partial = layout.state_file.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(state), indent=2) + "\n")
    partial.replace(layout.state_file)


# --------------------------------------------------------------------------- helpers


def kubectl(layout: Layout, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60):
    """kubectl of the pinned version with the cluster's admin kubeconfig."""
    binary = components.binaries()["kubectl"]
    command = [str(binary), f"--kubeconfig={layout.admin_kubeconfig}", *args]
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PrimageError(f"kubectl {' '.join(args)} did not answer within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        raise PrimageError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def ctr(layout: Layout, *args: str, stdin=None, check: bool = True) -> subprocess.CompletedProcess:
    binary = components.binaries()["ctr"]
    command = [str(binary), "--address", str(layout.socket), "--namespace", "k8s.io", *args]
    result = subprocess.run(command, stdin=stdin, capture_output=True, text=stdin is None, check=False)
    if check and result.returncode != 0:
        error = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
        raise PrimageError(f"ctr {' '.join(args)} failed: {error.strip()}")
    return result


def _log_tail(process: host.Process, lines: int = 4) -> str:
    try:
        text = Path(process.log).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line[:240] for line in text[-lines:])


def _wait(what: str, ready: Callable[[], bool], processes: list[host.Process], timeout: float = READY_TIMEOUT) -> None:
    """Poll `ready` until it holds; fail at once, with its log, when a component exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if not host.alive(process):
                raise PrimageError(
                    f"{process.name} exited while waiting for {what}: {_log_tail(process)}", file=process.log
                )
        if ready():
            return
        time.sleep(0.25)
    raise PrimageError(
        f"timed out after {timeout:.0f} s waiting for {what} (logs in {paths.relative(Path(processes[-1].log).parent)})"
    )


# --------------------------------------------------------------------------- preparing


def _refuse_if_up(layout: Layout, settings: Settings) -> None:
    state = load_state(layout)
    if state is not None and state.phase == "up" and all(host.alive(p) for p in state.process_objects()):
        raise PrimageError(
            f"the cluster is already up (since {state.started}; kubeconfig {layout.admin_kubeconfig}); "
            "run `primage cluster down` first"
        )
    if state is not None:
        engine.progress("a previous cluster did not stop cleanly: taking it down first")
        down(layout)
    for bridge in (settings.bridge, settings.cni_bridge):
        if host.link_exists(bridge):
            owner = host.link_alias(bridge) or "unknown"
            if _take_over_stale_owner(owner, layout):
                continue
            raise PrimageError(
                f"interface {bridge} exists already (a cluster of another checkout? its owner: {owner}); "
                "run `primage cluster down` there, or delete the interface"
            )


OWNER_PREFIX = "primage cluster "


def _take_over_stale_owner(owner: str, layout: Layout) -> bool:
    """A bridge left by a cluster of another checkout whose processes are all gone (the host
    rebooted, or its session was killed without `down`): restore the host that cluster
    recorded, so one dead cluster does not block every other checkout. A live cluster, or a
    bridge nobody recorded, is never touched."""
    if not owner.startswith(OWNER_PREFIX):
        return False
    base = Path(owner[len(OWNER_PREFIX) :])
    if base == layout.base:
        return False  # our own state was handled above; a bridge without it is not ours to guess
    other = Layout(base)
    try:
        state = load_state(other)
    except (OSError, ValueError, TypeError):
        return False
    if state is None or any(host.alive(p) for p in state.process_objects()):
        return False
    engine.progress(f"the cluster of {paths.relative(base)} stopped without `down`: restoring the host it left first")
    down(other, quiet=True)
    return True


def _prepare_folders(layout: Layout) -> None:
    """Fresh runtime folders (a new cluster each time); the logs are of this run only."""
    for folder in [*layout.runtime_folders(), layout.logs]:
        host.unmount_under(folder)
        shutil.rmtree(folder, ignore_errors=True)
    layout.base.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.base, 0o700)
    for folder in (
        layout.pki,
        layout.kubeconfigs,
        layout.kubeadm_output,
        layout.configs,
        layout.run,
        layout.logs,
        layout.cni_conf,
        layout.cni_ipam,
        layout.pod_logs,
        layout.volume_plugins,
        layout.kubelet_root,
    ):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.containerd_root.mkdir(parents=True, exist_ok=True, mode=0o700)


def _kubeadm(layout: Layout, *args: str, dry_run: bool = False) -> None:
    """Run a kubeadm phase on the harness's configuration; its output goes to kubeadm.log
    without the bootstrap token the bootstrap-token phase prints (a join secret)."""
    binary = components.binaries()["kubeadm"]
    env = dict(os.environ)
    command = [str(binary), *args, f"--config={layout.kubeadm / 'init.yaml'}"]
    if dry_run:
        # kubeadm writes what a dry run produces here instead of under /etc/kubernetes/tmp.
        env["KUBEADM_INIT_DRYRUN_DIR"] = str(layout.kubeadm_output)
        command.append("--dry-run")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    output = "\n".join(line for line in (result.stdout + result.stderr).splitlines() if not TOKEN_LINE.search(line))
    log = layout.logs / "kubeadm.log"
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n{output}\n")
    if result.returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-4:])
        raise PrimageError(f"kubeadm {' '.join(args)} failed on the kubernetes role's configuration: {tail}", file=log)


TOKEN_LINE = re.compile(r"Using tokens?:|[a-z0-9]{6}\.[a-z0-9]{16}")


def generate(settings: Settings, layout: Layout, binaries: components.Binaries) -> None:
    """The role's kubeadm configuration, then kubeadm's certificates, kubeconfigs and manifests."""
    init = layout.kubeadm / "init.yaml"
    init.write_text(config.harness_init_config(settings, layout), encoding="utf-8")
    (layout.kubeadm / "role-init.yaml").write_text(config.render_role_init_config(settings, layout), encoding="utf-8")
    config.write_authentication_config(settings, layout)
    _kubeadm(layout, "config", "validate")
    _kubeadm(layout, "init", "phase", "certs", "all")
    kubeconfig_dir = f"--kubeconfig-dir={layout.kubeconfigs}"
    _kubeadm(layout, "init", "phase", "kubeconfig", "all", kubeconfig_dir)
    _kubeadm(layout, "init", "phase", "control-plane", "all", dry_run=True)
    _kubeadm(layout, "init", "phase", "etcd", "local", dry_run=True)
    _kubeadm(layout, "init", "phase", "kubelet-start", dry_run=True)
    # kube-proxy's client certificate (kubeadm's addon would use a ServiceAccount token instead).
    result = subprocess.run(
        [str(binaries["kubeadm"]), "kubeconfig", "user", f"--config={init}", "--client-name=system:kube-proxy"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PrimageError(f"kubeadm kubeconfig user failed: {result.stderr.strip()}")
    proxy_kubeconfig = layout.kubeconfigs / "kube-proxy.conf"
    proxy_kubeconfig.touch(mode=0o600)
    proxy_kubeconfig.write_text(result.stdout)
    pki.kubelet_serving_certificate(layout.pki, settings.node_name, settings.node_ip)
    _write(layout.configs / "kubelet.yaml", yaml.safe_dump(config.kubelet_config(settings, layout)))
    _write(layout.configs / "kube-proxy.yaml", yaml.safe_dump(config.kube_proxy_config(settings, layout)))
    _write(layout.configs / "containerd.toml", config.containerd_config(settings, layout, binaries))
    _write(layout.cni_conf / "10-primage.conflist", json.dumps(config.cni_config(settings, layout), indent=2))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- up


def _component_env(binaries: components.Binaries) -> dict[str, str]:
    """PATH with containerd's shim first, then the system's tools (iptables, mount, runc)."""
    env = dict(os.environ)
    env["PATH"] = (
        f"{binaries['containerd-shim-runc-v2'].parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    )
    return env


def _commands(settings: Settings, layout: Layout, binaries: components.Binaries) -> dict[str, list[str]]:
    commands = {
        "containerd": [str(binaries["containerd"]), f"--config={layout.configs / 'containerd.toml'}"],
        **config.control_plane_commands(settings, layout, binaries),
        "kubelet": config.kubelet_command(settings, layout, binaries),
        "kube-proxy": [str(binaries["kube-proxy"]), f"--config={layout.configs / 'kube-proxy.yaml'}"],
    }
    return {name: commands[name] for name in START_ORDER}


def up(
    settings: Settings | None = None,
    images: list[str] | tuple[str, ...] = (),
    layout: Layout | None = None,
    fuse_plugin: bool = True,
) -> ClusterState:
    """Start the cluster and wait until its node is Ready; on failure, leave nothing behind."""
    settings = settings or Settings()
    layout = layout or Layout()
    host.require_root()
    binaries = components.require_built()
    layout.check_socket_length()
    _refuse_if_up(layout, settings)
    conflicts = host.port_conflicts(settings.ports())
    if conflicts:
        raise PrimageError("the cluster cannot start: " + "; ".join(conflicts))
    if images:
        engine.ensure_docker()
    for image in images:
        _docker_image_id(image)  # refuse a missing image before anything changes
    started = time.monotonic()
    state = ClusterState(
        settings=asdict(settings),
        host={"sysctls": host.read_sysctls(), "chains": host.iptables_chains(), "folders": host.existing_folders()},
        started=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _prepare_folders(layout)
    save_state(layout, state)
    try:
        _start(settings, layout, binaries, state, images, fuse_plugin)
    except BaseException:
        engine.progress("the cluster did not come up: taking down what started")
        down(layout, quiet=True)
        raise
    state.phase = "up"
    state.timings["up"] = round(time.monotonic() - started, 1)
    save_state(layout, state)
    return state


def _start(settings, layout, binaries, state: ClusterState, images, fuse_plugin: bool) -> None:
    timings = state.timings
    mark = time.monotonic()
    engine.progress(f"bridge {settings.bridge} ({settings.node_address}) and cgroup {settings.cgroup_root}")
    host.create_bridge(settings.bridge, settings.node_address, f"{OWNER_PREFIX}{layout.base}")
    host.create_cgroup_root(settings.cgroup_root)
    engine.progress("certificates, kubeconfigs and manifests by kubeadm from the kubernetes role's configuration")
    generate(settings, layout, binaries)
    timings["generate"] = round(time.monotonic() - mark, 1)
    env = _component_env(binaries)
    commands = _commands(settings, layout, binaries)
    running: list[host.Process] = []

    def launch(name: str) -> None:
        process = host.start(name, commands[name], layout.logs / f"{name}.log", env)
        running.append(process)
        state.processes.append(process.as_dict())
        save_state(layout, state)

    engine.progress("starting containerd and etcd")
    launch("containerd")
    launch("etcd")
    _wait("containerd's socket", lambda: layout.socket.exists() and _ctr_answers(layout), running)
    import_archive(layout, components.pause_archive())
    if fuse_plugin:
        import_archive(layout, components.device_plugin_archive())
    engine.progress("starting kube-apiserver")
    launch("kube-apiserver")
    _wait("the API server", lambda: _api_ready(layout), running)
    timings["api ready"] = round(time.monotonic() - mark, 1)
    _grant_admin(layout)
    _upload_configuration(layout)
    engine.progress("starting the controller manager, scheduler, kubelet and kube-proxy")
    for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
        launch(name)
    if images:
        load_images(list(images), layout)
    _wait(f"node {settings.node_name} Ready", lambda: node_ready(layout, settings.node_name), running)
    _wait("the default ServiceAccount and CA bundle", lambda: _admission_ready(layout), running)
    timings["node ready"] = round(time.monotonic() - mark, 1)
    if fuse_plugin:
        deploy_fuse_plugin(layout, settings, running)
        timings["fuse plugin"] = round(time.monotonic() - mark, 1)


def _ctr_answers(layout: Layout) -> bool:
    return ctr(layout, "version", check=False).returncode == 0


def _api_ready(layout: Layout) -> bool:
    try:
        return kubectl(layout, "get", "--raw=/readyz", check=False, timeout=10).returncode == 0
    except PrimageError:  # no answer yet: a busy machine
        return False


def node_ready(layout: Layout, node: str) -> bool:
    result = kubectl(
        layout, "get", "node", node, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False
    )
    return result.stdout.strip() == "True"


def _admission_ready(layout: Layout) -> bool:
    account = kubectl(layout, "get", "serviceaccount", "default", "-n", "default", check=False)
    bundle = kubectl(layout, "get", "configmap", "kube-root-ca.crt", "-n", "default", check=False)
    return account.returncode == 0 and bundle.returncode == 0


def _grant_admin(layout: Layout) -> None:
    """kubeadm's admin.conf is in group kubeadm:cluster-admins; `kubeadm init` binds that group
    with super-admin.conf, which only a full init does, so the harness does the same here."""
    super_admin = layout.kubeconfigs / "super-admin.conf"
    command = [
        str(components.binaries()["kubectl"]),
        f"--kubeconfig={super_admin}",
        "create",
        "clusterrolebinding",
        "kubeadm:cluster-admins",
        "--clusterrole=cluster-admin",
        "--group=kubeadm:cluster-admins",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "AlreadyExists" not in result.stderr:
        raise PrimageError(f"cannot bind the admin group: {result.stderr.strip()}")


def _upload_configuration(layout: Layout) -> None:
    """kubeadm's own phases against the real API server: the role's ClusterConfiguration and
    KubeletConfiguration stored as kubeadm stores them, and the RBAC and cluster-info that
    joining workers and the API server's kubelet client need (as `kubeadm init` does)."""
    admin = f"--kubeconfig={layout.admin_kubeconfig}"
    _kubeadm(layout, "init", "phase", "upload-config", "all", admin)
    _kubeadm(layout, "init", "phase", "bootstrap-token", admin)


# --------------------------------------------------------------------------- images


def import_archive(layout: Layout, archive: Path) -> None:
    """Import one of the cluster's own OCI archives unless that name has that manifest already."""
    name, digest = components.archive_image(archive)
    for line in ctr(layout, "images", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name and digest in fields:
            return
    with open(archive, "rb") as data:
        ctr(layout, "images", "import", "-", stdin=data)


def _docker_image_id(tag: str) -> str:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PrimageError(f"image {tag} is not in the local Docker engine (build or load it there first)")
    return result.stdout.strip()


def load_images(tags: list[str], layout: Layout | None = None) -> dict[str, str]:
    """Copy images from the local Docker engine into the cluster (`docker save` | `ctr import`).

    Returns tag -> "imported" or "up to date" (same image ID as last time)."""
    layout = layout or Layout()
    outcomes = {}
    listing = ctr(layout, "images", "ls").stdout
    for tag in tags:
        image_id = _docker_image_id(tag)
        label = f"org.primage.docker-id={image_id}"
        name = oci.full_name(tag)
        if any(line.split()[0] == name and label in line for line in listing.splitlines()[1:] if line.split()):
            outcomes[tag] = "up to date"
            continue
        engine.progress(f"importing {tag} from the Docker engine")
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        imported = ctr(layout, "images", "import", "-", stdin=save.stdout, check=False)
        save.stdout.close()
        save_error = save.stderr.read().decode(errors="replace")
        if save.wait() != 0 or imported.returncode != 0:
            raise PrimageError(
                f"importing {tag} failed: {save_error.strip()} {imported.stderr.decode(errors='replace').strip()}"
            )
        ctr(layout, "images", "label", name, label)
        outcomes[tag] = "imported"
    return outcomes


# --------------------------------------------------------------------------- the FUSE device plugin


def fuse_resource_name() -> str:
    return config.fuse_resource_name()


def deploy_fuse_plugin(layout: Layout, settings: Settings, running: list[host.Process]) -> None:
    """The kubernetes role's DaemonSet of the plugin, running the image `primage cluster build` made."""
    engine.progress("deploying the FUSE device plugin (the kubernetes role's DaemonSet)")
    daemonset = config.fuse_plugin_daemonset(components.device_plugin_image())
    kubectl(layout, "apply", "-f", "-", stdin=yaml.safe_dump(daemonset))
    resource = fuse_resource_name()
    path = "{.status.allocatable." + resource.replace(".", "\\.") + "}"

    def advertised() -> bool:
        _refuse_stuck_pods(layout, "kube-system", "app.kubernetes.io/name=fuse-device-plugin")
        result = kubectl(layout, "get", "node", settings.node_name, "-o", f"jsonpath={path}", check=False)
        return result.stdout.strip() not in ("", "0")

    _wait(f"the node to offer {resource}", advertised, running)


STUCK = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "CrashLoopBackOff", "CreateContainerError")


def _refuse_stuck_pods(layout: Layout, namespace: str, selector: str) -> None:
    """Fail at once when the pods cannot start (an image missing from the cluster, a crash)."""
    result = kubectl(layout, "get", "pods", "-n", namespace, "-l", selector, "-o", "json", check=False)
    for pod in json.loads(result.stdout or "{}").get("items", []):
        for status in pod.get("status", {}).get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting") or {}
            if waiting.get("reason") in STUCK:
                raise PrimageError(
                    f"pod {namespace}/{pod['metadata']['name']} cannot start: {waiting['reason']}: "
                    f"{waiting.get('message', '')[:300]}"
                )


# --------------------------------------------------------------------------- down


def down(layout: Layout | None = None, quiet: bool = False) -> dict:
    """Stop what `up` started and restore the host. Returns what was done (for reports).

    Every step runs even when one before it failed (a half-started cluster, a component that
    died); the state file stays until all of them succeeded, so `down` can be run again."""
    layout = layout or Layout()
    state = load_state(layout)
    if state is None:
        return {"stopped": [], "note": "no cluster is up"}
    host.require_root()
    started = time.monotonic()
    settings = state.settings_object()
    processes = {p.name: p for p in state.process_objects()}
    say = (lambda _m: None) if quiet else engine.progress
    report: dict = {"stopped": sorted(processes)}
    failures: list[str] = []

    def step(what: str, action: Callable[[], object], key: str | None = None) -> None:
        try:
            result = action()
        except Exception as exc:  # one broken step must not leave the rest of the host changed
            failures.append(f"{what}: {exc}")
            return
        if key:
            report[key] = result

    say("stopping the control plane, the kubelet and kube-proxy")
    for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
        if name in processes:
            step(f"stopping {name}", lambda name=name: host.stop(processes[name]))
    say("removing the containers")
    step("killing the containers", lambda: host.remove_cgroup_root(settings.cgroup_root))
    if "containerd" in processes and host.alive(processes["containerd"]):
        step("removing the containers", lambda: _remove_containers(layout))
    for name in ("kube-apiserver", "etcd", "containerd"):
        if name in processes:
            step(f"stopping {name}", lambda name=name: host.stop(processes[name]))
    step("stopping leftover shims", lambda: _stop_shims(layout))
    say("restoring the host")
    step("iptables", lambda: _clean_iptables(state), "iptables")
    step("kernel settings", lambda: host.restore_sysctls(state.host["sysctls"]), "sysctls")
    step(
        "interfaces",
        lambda: [b for b in (settings.cni_bridge, settings.bridge) if host.delete_link(b)],
        "interfaces",
    )
    step("cgroups", lambda: host.remove_cgroup_root(settings.cgroup_root), "cgroups")
    step("mounts", lambda: host.unmount_under(layout.base) + host.unmount_under(layout.containerd_root), "unmounted")
    step("folders", lambda: host.remove_new_folders(state.host["folders"]), "folders")
    step("runtime folders", lambda: _remove_runtime_folders(layout))
    if failures:
        raise PrimageError(
            "the cluster did not come down cleanly (run `primage cluster down` again): " + "; ".join(failures),
            file=layout.state_file,
        )
    layout.state_file.unlink(missing_ok=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def _stop_shims(layout: Layout) -> None:
    """Shims outlive a containerd that was killed; they name its socket on their command line."""
    for pid in host.processes_with_argument(str(layout.socket)):
        ticks = host.start_ticks(pid)
        if ticks is not None:
            host.stop(host.Process("containerd-shim", pid, ticks, ""), timeout=2)


def _remove_runtime_folders(layout: Layout) -> None:
    for folder in layout.runtime_folders():
        shutil.rmtree(folder, ignore_errors=True)
    _forget_cri_state(layout)


def _remove_containers(layout: Layout) -> None:
    listing = ctr(layout, "containers", "ls", "-q", check=False).stdout.split()
    for container in listing:
        ctr(layout, "tasks", "kill", "-s", "SIGKILL", container, check=False)
        ctr(layout, "tasks", "delete", "-f", container, check=False)
        ctr(layout, "containers", "rm", container, check=False)


def _clean_iptables(state: ClusterState) -> list[str]:
    proxy = components.binaries()["kube-proxy"]
    if proxy.exists():
        subprocess.run([str(proxy), "--cleanup"], capture_output=True, check=False, timeout=60)
    return host.remove_new_chains(state.host["chains"])


def _forget_cri_state(layout: Layout) -> None:
    """The CRI plugin's own records of sandboxes and containers (the images are kept)."""
    for folder in layout.containerd_root.glob("io.containerd.grpc.v1.cri"):
        shutil.rmtree(folder, ignore_errors=True)
