"""The test cluster's configuration: the kubernetes role's own kubeadm configuration, rendered,
then what kubeadm itself makes of it, adapted to a host that is not a dedicated node.

`kubeadm` generates the certificates, kubeconfigs, static-pod manifests and kubelet
configuration from the role's InitConfiguration; the harness runs the control plane with the
command lines of those manifests (paths moved under the cluster's folder) instead of as static
pods, because no registry serves the control-plane images here. What the harness changes is
listed in HOST_OVERRIDES-like dictionaries below, each with the reason.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import paths, roles, yamlio
from ..errors import PrimageError
from .components import Binaries, pins

# Unix socket paths are limited to 108 bytes; keep a margin for the ".ttrpc" suffix.
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class Settings:
    """Addresses and ports of the one-node cluster; defaults come from the kubernetes role."""

    node_name: str = "primage-node"
    # The node's own bridge. 198.18.0.0/15 is reserved for network benchmarking (RFC 2544):
    # never routed on the Internet, and outside Docker's default address pools.
    bridge: str = "primage0"
    node_address: str = "198.18.0.1/24"
    cni_bridge: str = "primage-cni0"
    api_port: int = 0  # 0: the role's kubernetes_apiserver_bind_port
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    etcd_metrics_port: int = 2381
    kubelet_port: int = 10250
    kubelet_healthz_port: int = 10248
    controller_manager_port: int = 10257
    scheduler_port: int = 10259
    proxy_metrics_port: int = 10249
    proxy_healthz_port: int = 10256
    cgroup_root: str = "/primage-cluster"

    @property
    def node_ip(self) -> str:
        return str(ipaddress.ip_interface(self.node_address).ip)

    def role_defaults(self) -> dict:
        return roles.find("kubernetes").defaults()

    @property
    def apiserver_port(self) -> int:
        return self.api_port or int(self.role_defaults()["kubernetes_apiserver_bind_port"])

    @property
    def pod_subnet(self) -> str:
        """The role's pod network (its CNI default when unset: flannel's 10.244.0.0/16)."""
        defaults = self.role_defaults()
        if defaults.get("kubernetes_pod_subnet"):
            return defaults["kubernetes_pod_subnet"]
        cni_defaults, _ = _role_vars()
        return cni_defaults["kubernetes__cni_default_pod_subnets"][defaults["kubernetes_cni"]]

    @property
    def node_pod_range(self) -> str:
        """The first /24 of the pod network: what the controller manager gives the first node."""
        return str(next(ipaddress.ip_network(self.pod_subnet).subnets(new_prefix=24)))

    @property
    def service_subnet(self) -> str:
        return self.role_defaults()["kubernetes_service_subnet"]

    @property
    def api_url(self) -> str:
        return f"https://{self.node_ip}:{self.apiserver_port}"

    def ports(self) -> dict[str, tuple[str, int]]:
        """Every port the cluster listens on, by purpose, with its address."""
        loopback, node = "127.0.0.1", self.node_ip
        return {
            "kube-apiserver": (node, self.apiserver_port),
            "etcd clients": (loopback, self.etcd_client_port),
            "etcd peers": (node, self.etcd_peer_port),
            "etcd metrics": (loopback, self.etcd_metrics_port),
            "kubelet": (node, self.kubelet_port),
            "kubelet healthz": (loopback, self.kubelet_healthz_port),
            "kube-controller-manager": (loopback, self.controller_manager_port),
            "kube-scheduler": (loopback, self.scheduler_port),
            "kube-proxy metrics": (loopback, self.proxy_metrics_port),
            "kube-proxy healthz": (loopback, self.proxy_healthz_port),
        }


def _role_vars() -> tuple[dict, object]:
    return yamlio.load_file(roles.find("kubernetes").path / "vars" / "main.yml")


class Layout:
    """Where one checkout's cluster keeps everything (a folder of paths.state_dir())."""

    def __init__(self, base: Path | None = None):
        self.base = base or paths.state_dir() / "cluster"
        self.pki = self.base / "pki"
        self.kubeconfigs = self.base / "kubeconfig"
        self.kubeadm = self.base / "kubeadm"
        # What kubeadm writes in dry runs: static-pod manifests, the kubelet configuration.
        self.kubeadm_output = self.kubeadm / "output"
        self.configs = self.base / "config"
        self.etcd_data = self.base / "etcd"
        self.run = self.base / "run"
        self.containerd_state = self.run / "containerd"
        self.runc_root = self.run / "runc"
        self.kubelet_root = self.base / "kubelet"
        self.pod_logs = self.base / "pod-logs"
        self.volume_plugins = self.base / "volume-plugins"
        self.cni_conf = self.base / "cni" / "net.d"
        self.cni_ipam = self.base / "cni" / "ipam"
        self.logs = self.base / "logs"

    @property
    def containerd_root(self) -> Path:
        """Kept between runs (the imported images live there), beside the runtime folders."""
        return self.base.parent / "cluster-containerd"

    @property
    def socket(self) -> Path:
        return self.base / "run" / "containerd.sock"

    @property
    def state_file(self) -> Path:
        return self.base / "state.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfigs / "admin.conf"

    def runtime_folders(self) -> list[Path]:
        """What `down` removes (the images and logs stay)."""
        return [
            self.pki,
            self.kubeconfigs,
            self.kubeadm,
            self.configs,
            self.etcd_data,
            self.run,
            self.kubelet_root,
            self.pod_logs,
            self.volume_plugins,
            self.cni_conf.parent,
        ]

    def check_socket_length(self) -> None:
        if len(str(self.socket)) + len(".ttrpc") > MAX_SOCKET_PATH:
            raise PrimageError(
                f"the containerd socket path {self.socket} is too long for a unix socket "
                f"({len(str(self.socket))} characters); set PRIMAGE_CACHE to a shorter folder"
            )


# --------------------------------------------------------------------------- kubeadm configuration


# The role's internal paths its templates name (vars/main.yml), as kubeadm's own files are.
_ROLE_PATH_VARS = ("kubernetes__authentication_dir", "kubernetes__authentication_config")


def render_role_template(relative: str, variables: dict) -> str:
    """A template of the kubernetes role (under its templates/) with its defaults, its internal
    paths and `variables`. Plain Jinja, as the role's kubeadm and add-on templates use no
    Ansible filter."""
    import jinja2

    role = roles.find("kubernetes")
    template = role.path / "templates" / relative
    role_vars, _ = _role_vars()
    values = {
        **role.defaults(),
        **{name: role_vars[name] for name in _ROLE_PATH_VARS},
        "ansible_managed": "rendered by primage cluster from the kubernetes role",
        **variables,
    }
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701 (YAML, not HTML)
    try:
        return environment.from_string(template.read_text(encoding="utf-8")).render(values)
    except jinja2.TemplateError as exc:
        raise PrimageError(
            f"cannot render the kubernetes role's {relative}: {exc}", file=paths.relative(template)
        ) from exc


def _node_variables(settings: Settings, layout: Layout) -> dict:
    """What the role's templates take from the node it runs on: here, the harness's node."""
    return {
        "kubernetes__node_name": settings.node_name,
        "kubernetes__advertise_address": settings.node_ip,
        "kubernetes__pod_subnet": settings.pod_subnet,
        "kubernetes_apiserver_bind_port": settings.apiserver_port,
        "kubernetes_cri_socket": f"unix://{layout.socket}",
    }


def render_role_init_config(settings: Settings, layout: Layout) -> str:
    """The kubernetes role's templates/etc/kubernetes/kubeadm/kubeadm-init.yaml.j2 with its defaults."""
    return render_role_template("etc/kubernetes/kubeadm/kubeadm-init.yaml.j2", _node_variables(settings, layout))


FUSE_PLUGIN_TEMPLATE = "etc/kubernetes/addons/fuse-device-plugin.yaml.j2"


def fuse_plugin_daemonset(image: str) -> dict:
    """The kubernetes role's FUSE device plugin DaemonSet, with the image the harness built."""
    return yaml.safe_load(render_role_template(FUSE_PLUGIN_TEMPLATE, {"kubernetes_fuse_device_plugin_image": image}))


def fuse_resource_name() -> str:
    """The extended resource the plugin advertises: the kubernetes role's option."""
    return str(roles.find("kubernetes").defaults()["kubernetes_fuse_device_plugin_resource"])


def write_authentication_config(settings: Settings, layout: Layout) -> Path:
    """The role's API server authentication configuration, where the API server's command line
    (kubeadm's, relocated) looks for it."""
    role_vars, _ = _role_vars()
    path = Path(_relocate(role_vars["kubernetes__authentication_config"], layout))
    path.parent.mkdir(parents=True, exist_ok=True)
    relative = "etc/kubernetes/authentication/authentication-config.yaml.j2"
    path.write_text(render_role_template(relative, _node_variables(settings, layout)), encoding="utf-8")
    return path


def harness_init_config(settings: Settings, layout: Layout) -> str:
    """The role's rendered configuration plus the folders of this host (kubeadm's defaults are
    /etc/kubernetes and /var/lib/etcd, which are not the harness's to write)."""
    documents = list(yaml.safe_load_all(render_role_init_config(settings, layout)))
    for document in documents:
        if document.get("kind") == "ClusterConfiguration":
            document["certificatesDir"] = str(layout.pki)
            document.setdefault("etcd", {}).setdefault("local", {})["dataDir"] = str(layout.etcd_data)
    return yaml.safe_dump_all(documents, sort_keys=False)


def manifest_command(layout: Layout, component: str) -> list[str]:
    """The command line kubeadm wrote into a static-pod manifest, paths moved into the layout."""
    manifest = layout.kubeadm_output / f"{component}.yaml"
    pod = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    command = list(pod["spec"]["containers"][0]["command"])
    return [_relocate(argument, layout) for argument in command]


def _relocate(argument: str, layout: Layout) -> str:
    """kubeadm hard-codes /etc/kubernetes/<component>.conf in manifests; ours are elsewhere."""
    return argument.replace("/etc/kubernetes/", f"{layout.kubeconfigs}/")


def with_flags(command: list[str], overrides: dict[str, str | None]) -> list[str]:
    """Set (or, with None, drop) `--flag=value` arguments of a command line."""
    kept = [arg for arg in command if arg.split("=", 1)[0].lstrip("-") not in overrides]
    added = [f"--{flag}={value}" for flag, value in overrides.items() if value is not None]
    return kept + added


def control_plane_commands(settings: Settings, layout: Layout, binaries: Binaries) -> dict[str, list[str]]:
    """etcd, kube-apiserver, controller manager, scheduler: kubeadm's flags and these changes."""
    node, loopback = settings.node_ip, "127.0.0.1"
    overrides: dict[str, dict[str, str | None]] = {
        "etcd": {
            # Clients only on loopback (kubeadm adds the node address: nothing else needs it).
            "listen-client-urls": f"https://{loopback}:{settings.etcd_client_port}",
            "advertise-client-urls": f"https://{loopback}:{settings.etcd_client_port}",
            "listen-metrics-urls": f"http://{loopback}:{settings.etcd_metrics_port}",
        },
        "kube-apiserver": {
            # Only the node's bridge, never the host's public interfaces.
            "bind-address": node,
            # No --anonymous-auth: the role's --authentication-config says who may call anonymously
            # (the health endpoints only), and the API server refuses the flag beside it.
            "anonymous-auth": None,
            # The kubelet's serving certificate is signed by the cluster CA (see kubelet_serving_cert).
            "kubelet-certificate-authority": str(layout.pki / "ca.crt"),
            "kubelet-preferred-address-types": "InternalIP",
            "profiling": "false",
        },
        "kube-controller-manager": {
            "secure-port": str(settings.controller_manager_port),
            "profiling": "false",
            # Its default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec, is created at start.
            "flex-volume-plugin-dir": str(layout.volume_plugins),
        },
        "kube-scheduler": {"secure-port": str(settings.scheduler_port), "profiling": "false"},
    }
    commands = {}
    for component, changes in overrides.items():
        command = manifest_command(layout, component)
        command[0] = str(binaries[component])
        commands[component] = with_flags(command, changes)
    return commands


# --------------------------------------------------------------------------- node components


def kubelet_config(settings: Settings, layout: Layout) -> dict:
    """kubeadm's kubelet configuration (the role's KubeletConfiguration merged in), for this host."""
    config = yaml.safe_load((layout.kubeadm_output / "config.yaml").read_text(encoding="utf-8"))
    config.update(
        {
            # No systemd here: the role's systemd driver cannot work, and runc uses cgroupfs too.
            "cgroupDriver": "cgroupfs",
            # This host runs cgroup v1; the 1.36 kubelet refuses it unless told.
            "failCgroupV1": False,
            # Everything the kubelet makes lives under the cluster's folder or its own cgroup.
            "cgroupRoot": settings.cgroup_root,
            "podLogsDir": str(layout.pod_logs),
            "volumePluginDir": str(layout.volume_plugins),
            "address": settings.node_ip,
            "port": settings.kubelet_port,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": settings.kubelet_healthz_port,
            "readOnlyPort": 0,
            "tlsCertFile": str(layout.pki / "kubelet.crt"),
            "tlsPrivateKeyFile": str(layout.pki / "kubelet.key"),
            # The client certificate is kubeadm's, embedded in kubelet.conf; no CSR rotation.
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            # No cluster DNS is built here: pods resolve through the host's resolver.
            "clusterDNS": [],
            # A shared machine: do not evict on the disk use of others, do not collect our images.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100,
            "failSwapOn": False,
            # Leave the host's kernel settings alone where the kubelet lets us (others are restored on down).
            "protectKernelDefaults": False,
        }
    )
    # kubeadm's /etc/kubernetes/manifests: the control plane runs as processes here.
    config.pop("staticPodPath", None)
    return config


def kube_proxy_config(settings: Settings, layout: Layout) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.kubeconfigs / "kube-proxy.conf")},
        "hostnameOverride": settings.node_name,
        "mode": "iptables",
        "clusterCIDR": settings.pod_subnet,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{settings.proxy_healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{settings.proxy_metrics_port}",
        # NodePorts answer on the node's bridge only.
        "nodePortAddresses": [f"{settings.node_ip}/32"],
        # 0 leaves the host's conntrack table size and timeouts as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        # Localhost NodePorts need route_localnet=1 on the whole host: not on a shared machine.
        "iptables": {"localhostNodePorts": False},
        # This machine's processes cannot lower their oom_score_adj.
        "oomScoreAdj": 0,
    }


def containerd_config(settings: Settings, layout: Layout, binaries: Binaries) -> str:
    """containerd 2 with its own socket, root and state: never the Docker engine's containerd."""
    sandbox = pins().pause_image
    lines = [
        "version = 3",
        f"root = {json.dumps(str(layout.containerd_root))}",
        f"state = {json.dumps(str(layout.containerd_state))}",
        # NRI would listen on /var/run/nri; nothing here uses it.
        'disabled_plugins = ["io.containerd.nri.v1.nri"]',
        "",
        "[grpc]",
        f"  address = {json.dumps(str(layout.socket))}",
        "[ttrpc]",
        f"  address = {json.dumps(str(layout.socket) + '.ttrpc')}",
        "",
        "[plugins.'io.containerd.internal.v1.opt']",
        f"  path = {json.dumps(str(layout.containerd_root / 'opt'))}",
        "",
        "[plugins.'io.containerd.cri.v1.images']",
        '  snapshotter = "overlayfs"',
        "  [plugins.'io.containerd.cri.v1.images'.pinned_images]",
        # The locally built pause image, under the name the role's containerd config pins.
        f"    sandbox = {json.dumps(sandbox)}",
        "",
        "[plugins.'io.containerd.cri.v1.runtime']",
        # This machine's containers cannot lower oom_score_adj; without this every pod fails
        # with "can't get final child's PID from pipe: EOF".
        "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        "  enable_cdi = false",
        "  [plugins.'io.containerd.cri.v1.runtime'.cni]",
        f"    bin_dirs = [{json.dumps(str(binaries['cni/bridge'].parent))}]",
        f"    conf_dir = {json.dumps(str(layout.cni_conf))}",
        "  [plugins.'io.containerd.cri.v1.runtime'.containerd]",
        '    default_runtime_name = "runc"',
        "    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
        '      runtime_type = "io.containerd.runc.v2"',
        "      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
        # cgroupfs like the kubelet (no systemd); the shim's runc state under our folder.
        "        SystemdCgroup = false",
        f"        BinaryName = {json.dumps(str(binaries['runc']))}",
        f"        Root = {json.dumps(str(layout.runc_root))}",
        "",
        "[plugins.'io.containerd.grpc.v1.cri']",
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        "",
    ]
    return "\n".join(lines)


def cni_config(settings: Settings, layout: Layout) -> dict:
    """A bridge network for the node's pods, its IP leases under the cluster's folder."""
    return {
        "cniVersion": "1.0.0",
        "name": "primage-cluster",
        "plugins": [
            {
                "type": "bridge",
                "bridge": settings.cni_bridge,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": settings.node_pod_range}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_ipam),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            # Docker sets the FORWARD policy to DROP; this accepts the pods' own traffic.
            {"type": "firewall", "backend": "iptables"},
        ],
    }


def kubelet_command(settings: Settings, layout: Layout, binaries: Binaries) -> list[str]:
    env_flags = (layout.kubeadm_output / "kubeadm-flags.env").read_text(encoding="utf-8")
    kubeadm_flags = shlex.split(env_flags.split("=", 1)[1].strip().strip('"')) if "=" in env_flags else []
    return [
        str(binaries["kubelet"]),
        *kubeadm_flags,
        f"--config={layout.configs / 'kubelet.yaml'}",
        f"--kubeconfig={layout.kubeconfigs / 'kubelet.conf'}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.kubelet_root / 'pki'}",
        f"--node-ip={settings.node_ip}",
    ]
