"""What the test cluster does to the host, recorded before and undone after.

The kubelet, kube-proxy and the CNI plugins change the machine they run on: kernel settings,
iptables chains, folders at fixed paths, mounts, cgroups, network interfaces. The machine is
shared (other engineers' Docker containers run beside the cluster), so the harness records
what existed before `up` and, on `down`, removes only what appeared since and restores only
the settings it saw change. Nothing here touches what Docker owns.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import PrimageError

# Kernel settings the kubelet (setupKernelTunables), kube-proxy and the CNI bridge may write.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)

# Folders at fixed paths the components create whatever they are told: the kubelet's
# device-plugin socket folder and legacy log links are constants of the kubelet, the CNI
# result cache is libcni's. Nothing else on the host uses them, so `down` removes them whole
# when they did not exist before `up`.
CLUSTER_FOLDERS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/usr/libexec/kubernetes",
)
# Folders the cluster should never need but that other containerd users share (the Docker
# engine's shims keep their sockets in /run/containerd/s): watched, and removed only when
# they appeared since `up` and are empty once the cluster's processes are gone.
SHARED_FOLDERS = (
    "/run/containerd",
    "/run/containerd/s",
    "/run/containerd/runc",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/opt/containerd",
    "/var/lib/containerd",
    "/etc/containerd",
    "/run/nri",
    "/etc/nri",
    "/etc/kubernetes",
    "/var/lib/etcd",
)
HOST_FOLDERS = CLUSTER_FOLDERS + SHARED_FOLDERS

# Chains the cluster's components create (kubelet, kube-proxy, the CNI plugins).
OWN_CHAIN = re.compile(r"^(KUBE-|CNI-)")
IPTABLES_FAMILIES = ("iptables", "ip6tables")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")


def require_root() -> None:
    if os.geteuid() != 0:
        raise PrimageError("the test cluster needs root (it runs a kubelet, containerd and iptables changes)")


# --------------------------------------------------------------------------- sysctls


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys: tuple[str, ...] = SYSCTLS) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for key in keys:
        try:
            values[key] = _sysctl_path(key).read_text().strip()
        except OSError:
            values[key] = None  # the module that provides it is not loaded
    return values


def restore_sysctls(saved: dict[str, str | None]) -> list[str]:
    """Write back every saved value that changed; returns the keys restored."""
    restored = []
    current = read_sysctls(tuple(saved))
    for key, value in saved.items():
        if value is None or current.get(key) in (None, value):
            continue
        with contextlib.suppress(OSError):
            _sysctl_path(key).write_text(value + "\n")
            restored.append(key)
    return restored


# --------------------------------------------------------------------------- folders and mounts


def existing_folders(folders: tuple[str, ...] = HOST_FOLDERS) -> list[str]:
    return [folder for folder in folders if os.path.lexists(folder)]


def remove_new_folders(
    before: list[str], ours: tuple[str, ...] = CLUSTER_FOLDERS, shared: tuple[str, ...] = SHARED_FOLDERS
) -> list[str]:
    """Remove the fixed-path folders that did not exist before `up` (deepest first)."""
    removed = []
    for folder in sorted(ours + shared, key=len, reverse=True):
        if folder in before or not os.path.lexists(folder):
            continue
        if any(other != folder and other.startswith(folder + "/") for other in before):
            continue  # a folder that existed lives inside: keep the parent
        if folder in ours:
            unmount_under(Path(folder))
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _remove_empty_tree(Path(folder))
        if not os.path.lexists(folder):
            removed.append(folder)
    return removed


def _remove_empty_tree(folder: Path) -> None:
    """Remove `folder` and its subfolders only as far as they hold no file (another user's)."""
    for current, _, _ in os.walk(folder, topdown=False, onerror=lambda _error: None):
        with contextlib.suppress(OSError):
            os.rmdir(current)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below `folder`, deepest first."""
    prefix = str(folder.resolve()) if folder.exists() else str(folder)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: (p.count("/"), p), reverse=True)


def unmount_under(folder: Path) -> list[str]:
    """Unmount everything at or below `folder` (volumes, shm, rootfs, netns, the kubelet's bind)."""
    done = []
    for _ in range(5):  # a bind mounted twice (the kubelet's rshared root) needs more than one pass
        points = mounts_under(folder)
        if not points:
            break
        for point in points:
            result = subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=False)
            if result.returncode == 0:
                done.append(point)
    return done


# --------------------------------------------------------------------------- network interfaces


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def link_alias(name: str) -> str:
    try:
        return Path("/sys/class/net", name, "ifalias").read_text().strip()
    except OSError:
        return ""


def create_bridge(name: str, address: str, alias: str) -> None:
    """The node's own bridge: the kubelet refuses a loopback node IP, and nothing else is touched."""
    for command in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "link", "set", "dev", name, "alias", alias],
        ["ip", "addr", "add", address, "dev", name],
        ["ip", "link", "set", "dev", name, "up"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PrimageError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")


def delete_link(name: str) -> bool:
    if not link_exists(name):
        return False
    subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)
    return True


# --------------------------------------------------------------------------- iptables


def _iptables_save(family: str, table: str) -> str:
    result = subprocess.run([f"{family}-save", "-t", table], capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else ""


def iptables_chains() -> dict[str, list[str]]:
    """Chains per `family/table`, e.g. {"iptables/nat": ["DOCKER", "POSTROUTING", ...]}."""
    chains = {}
    for family in IPTABLES_FAMILIES:
        if not shutil.which(f"{family}-save"):
            continue
        for table in IPTABLES_TABLES:
            text = _iptables_save(family, table)
            chains[f"{family}/{table}"] = [line[1:].split()[0] for line in text.splitlines() if line.startswith(":")]
    return chains


def remove_new_chains(before: dict[str, list[str]]) -> list[str]:
    """Delete the KUBE-*/CNI-* chains that appeared since `before`, and every rule jumping to them."""
    removed = []
    for key, chains in iptables_chains().items():
        family, table = key.split("/")
        new = {chain for chain in chains if OWN_CHAIN.match(chain) and chain not in before.get(key, [])}
        if not new:
            continue
        for line in _iptables_save(family, table).splitlines():
            if not line.startswith("-A "):
                continue
            parts = line.split()
            chain, target = parts[1], _target(parts)
            if chain not in new and target in new:
                rule = _rule_args(line)
                subprocess.run([family, "-w", "-t", table, "-D", chain, *rule], capture_output=True, check=False)
        for chain in sorted(new):
            subprocess.run([family, "-w", "-t", table, "-F", chain], capture_output=True, check=False)
        for chain in sorted(new):
            subprocess.run([family, "-w", "-t", table, "-X", chain], capture_output=True, check=False)
            removed.append(f"{key}/{chain}")
    return removed


def _target(parts: list[str]) -> str:
    for flag in ("-j", "-g"):
        if flag in parts:
            return parts[parts.index(flag) + 1]
    return ""


def _rule_args(line: str) -> list[str]:
    """The arguments of an iptables-save `-A CHAIN ...` line, quotes honoured (comments have spaces)."""
    return shlex.split(line)[2:]


# --------------------------------------------------------------------------- cgroups


def cgroup_hierarchies() -> list[Path]:
    """Mounted cgroup hierarchies: v1 ones, and the v2 one a hybrid host mounts beside them
    (runc creates the pods' cgroups in both)."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                found.append(Path(_unescape(fields[4])))
    return found


def create_cgroup_root(name: str) -> None:
    """The kubelet's cgroupRoot must exist in every hierarchy; cpuset needs its cpus and mems."""
    for hierarchy in cgroup_hierarchies():
        folder = hierarchy / name.strip("/")
        folder.mkdir(exist_ok=True)
        for setting in ("cpuset.cpus", "cpuset.mems"):
            parent, child = hierarchy / setting, folder / setting
            if parent.exists() and not child.read_text().strip():
                child.write_text(parent.read_text())


def _cgroup_folders(root: Path) -> list[Path]:
    """Every folder of a cgroup subtree, deepest first; folders may vanish while we look."""
    found = []
    for folder, _, _ in os.walk(root, topdown=False, onerror=lambda _error: None):
        found.append(Path(folder))
    return found


def cgroup_processes(name: str) -> set[int]:
    pids = set()
    for hierarchy in cgroup_hierarchies():
        for folder in _cgroup_folders(hierarchy / name.strip("/")):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(pid) for pid in (folder / "cgroup.procs").read_text().split())
    return pids


def remove_cgroup_root(name: str) -> list[str]:
    """Kill what is left inside and remove the folders, deepest first."""
    for _ in range(3):
        pids = cgroup_processes(name)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    removed = []
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / name.strip("/")
        for folder in _cgroup_folders(root):
            _rmdir_when_empty(folder)
        if not root.exists():
            removed.append(str(root))
    return removed


def _rmdir_when_empty(folder: Path) -> None:
    """A cgroup can be removed once its last process is reaped: retry briefly while busy."""
    for _ in range(20):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return
            time.sleep(0.1)


# --------------------------------------------------------------------------- ports


@dataclass
class Listener:
    address: str
    port: int
    process: str


def listeners() -> list[Listener]:
    result = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=False)
    found = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        address, _, port = fields[3].rpartition(":")
        match = re.search(r'\("([^"]+)",pid=(\d+)', line)
        process = f"{match.group(1)} (pid {match.group(2)})" if match else "an unknown process"
        with contextlib.suppress(ValueError):
            found.append(Listener(address.strip("[]").split("%")[0], int(port), process))
    return found


def port_conflicts(wanted: dict[str, tuple[str, int]]) -> list[str]:
    """Messages for every wanted (address, port) something already listens on."""
    wildcard = {"0.0.0.0", "*", "::"}  # noqa: S104 (addresses read from ss, nothing is bound)
    messages = []
    current = listeners()
    for purpose, (address, port) in wanted.items():
        for listener in current:
            if listener.port == port and (listener.address in wildcard or listener.address == address):
                messages.append(
                    f"port {port} ({purpose}, on {address}) is in use by {listener.process} "
                    f"listening on {listener.address}:{port}"
                )
                break
    return messages


# --------------------------------------------------------------------------- processes


@dataclass
class Process:
    """A process the harness started, identified beyond its pid (pids are reused)."""

    name: str
    pid: int
    start_ticks: int
    log: str

    def as_dict(self) -> dict:
        return asdict(self)


def start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie is gone for our purposes
    return int(fields[19])


def alive(process: Process) -> bool:
    return start_ticks(process.pid) == process.start_ticks


def start(name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        popen = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    ticks = start_ticks(popen.pid)
    if ticks is None:
        raise PrimageError(f"{name} exited at once; see its log", file=log)
    return Process(name, popen.pid, ticks, str(log))


def stop(process: Process, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; only if the pid is still the process we started."""
    if not alive(process):
        _reap(process.pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(process.pid)
        if not alive(process):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    for _ in range(50):
        _reap(process.pid)
        if not alive(process):
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child (the harness in a test run)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def processes_with_argument(argument: str) -> list[int]:
    """Pids whose command line holds `argument` (the shims name their containerd's socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in arguments:
            found.append(int(entry.name))
    return found


def resident_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
