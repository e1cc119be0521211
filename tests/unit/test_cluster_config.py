"""The test cluster's pins, configuration and image archives, without starting anything.

What needs the real cluster (it up, pods, the host restored) is in tests/cluster/.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import socket
import tarfile
from pathlib import Path

import pytest
import yaml

from primage import paths, release, roles
from primage.cluster import components, config, host, lifecycle, oci
from primage.cluster.config import Layout, Settings
from primage.errors import PrimageError

ROLE_DEFAULTS = roles.find("kubernetes").defaults()


def test_kubernetes_and_pause_versions_are_the_roles():
    assert components.pins().kubernetes_version == ROLE_DEFAULTS["kubernetes_version"]
    assert components.pins().pause_image == f"registry.k8s.io/pause:{ROLE_DEFAULTS['kubernetes_pause_version']}"
    assert components.kube_bin_dir().parent.name == f"v{ROLE_DEFAULTS['kubernetes_version']}"


def test_go_modules_are_pinned_to_exact_versions():
    for module in components.pins().go_modules:
        assert re.fullmatch(r"v\d+\.\d+\.\d+", module.version), module
        assert module.expect, f"{module.name} has no version check"


def test_setup_installs_the_clusters_debian_packages():
    setup = (paths.root() / "scripts" / "setup.sh").read_text()
    listed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", setup[setup.index("debian_packages=(") : setup.index("\n)\n")]))
    assert set(components.pins().debian_packages) <= listed


def test_the_device_plugin_requires_the_kubelet_api_of_the_pinned_version():
    go_mod = (components.device_plugin_source() / "go.mod").read_text()
    major_minor_patch = ROLE_DEFAULTS["kubernetes_version"].split(".", 1)[1]
    assert f"k8s.io/kubelet v0.{major_minor_patch}" in go_mod


def test_the_harness_deploys_the_roles_daemonset_with_the_image_it_builds():
    daemonset = config.fuse_plugin_daemonset(components.device_plugin_image())
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == components.device_plugin_image()
    assert components.device_plugin_image().endswith(f":{release.current().version}")
    assert f"--resource-name={lifecycle.fuse_resource_name()}" in container["args"]
    assert "privileged" not in container["securityContext"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_roles_plugin_image_is_the_harness_image_in_the_projects_registry():
    """The role pulls what `primage cluster build` makes, under the project's registry, at the release."""
    image = ROLE_DEFAULTS["kubernetes_fuse_device_plugin_image"]
    registry = "registry.gitlab.com/" + release.current().repository.removeprefix("https://gitlab.com/")
    assert image == f"{registry}/{components.device_plugin_image()}"


def test_the_plugins_resource_is_the_one_the_application_pods_request():
    app_defaults = yaml.safe_load((paths.ansible_dir() / "roles/kubernetes_app/defaults/main.yml").read_text())
    assert ROLE_DEFAULTS["kubernetes_fuse_device_plugin_resource"] == app_defaults["kubernetes_app_fuse_resource"]
    assert lifecycle.fuse_resource_name() == app_defaults["kubernetes_app_fuse_resource"]


def test_missing_binaries_are_named_with_the_command_that_builds_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path))
    with pytest.raises(PrimageError) as error:
        components.require_built()
    assert "not built: kube-apiserver" in str(error.value)
    assert "run `primage cluster build`" in str(error.value)


def test_unknown_component_is_refused():
    with pytest.raises(PrimageError, match="unknown component kube-dns"):
        components.build(["kube-dns"])


# --------------------------------------------------------------------------- configuration


@pytest.fixture
def layout(tmp_path):
    return Layout(tmp_path / "cluster")


def test_the_role_template_renders_with_the_harness_addresses(layout):
    documents = list(yaml.safe_load_all(config.render_role_init_config(Settings(), layout)))
    init, cluster_config = documents[0], documents[1]
    assert init["localAPIEndpoint"] == {"advertiseAddress": "198.18.0.1", "bindPort": 6443}
    assert init["nodeRegistration"]["criSocket"] == f"unix://{layout.socket}"
    assert cluster_config["kubernetesVersion"] == f"v{ROLE_DEFAULTS['kubernetes_version']}"
    assert cluster_config["networking"]["podSubnet"] == "10.244.0.0/16"


def test_the_harness_moves_kubeadm_folders_into_the_layout(layout):
    documents = list(yaml.safe_load_all(config.harness_init_config(Settings(), layout)))
    cluster_config = next(d for d in documents if d["kind"] == "ClusterConfiguration")
    assert cluster_config["certificatesDir"] == str(layout.pki)
    assert cluster_config["etcd"]["local"]["dataDir"] == str(layout.etcd_data)


def test_settings_follow_the_role():
    settings = Settings()
    assert settings.apiserver_port == ROLE_DEFAULTS["kubernetes_apiserver_bind_port"]
    assert settings.service_subnet == ROLE_DEFAULTS["kubernetes_service_subnet"]
    assert ipaddress.ip_network(settings.node_pod_range).subnet_of(ipaddress.ip_network(settings.pod_subnet))
    assert Settings(api_port=7443).api_url == "https://198.18.0.1:7443"
    # The node's bridge is in the benchmarking range, never in the pod or service networks.
    node = ipaddress.ip_interface(settings.node_address).network
    assert node.subnet_of(ipaddress.ip_network("198.18.0.0/15"))
    assert not node.overlaps(ipaddress.ip_network(settings.pod_subnet))


def test_with_flags_replaces_drops_and_adds():
    command = ["kube-apiserver", "--secure-port=6443", "--profiling=true", "--a=b"]
    assert config.with_flags(command, {"profiling": "false", "a": None, "bind-address": "198.18.0.1"}) == [
        "kube-apiserver",
        "--secure-port=6443",
        "--profiling=false",
        "--bind-address=198.18.0.1",
    ]


def test_kubeadm_kubeconfig_paths_are_relocated(layout):
    assert config._relocate("--kubeconfig=/etc/kubernetes/scheduler.conf", layout) == (
        f"--kubeconfig={layout.kubeconfigs}/scheduler.conf"
    )


def test_containerd_never_uses_the_docker_engines_paths(layout):
    text = config.containerd_config(Settings(), layout, components.binaries())
    assert f'address = "{layout.socket}"' in text
    assert '"/run/containerd' not in text
    assert '"/var/lib/containerd' not in text
    assert "restrict_oom_score_adj = true" in text
    assert 'sandbox = "registry.k8s.io/pause:' in text


def test_kube_proxy_leaves_conntrack_and_route_localnet_alone(layout):
    proxy = config.kube_proxy_config(Settings(), layout)
    assert proxy["conntrack"] == {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"}
    assert proxy["iptables"]["localhostNodePorts"] is False
    assert proxy["nodePortAddresses"] == ["198.18.0.1/32"]


def test_cni_leases_live_in_the_layout(layout):
    bridge = config.cni_config(Settings(), layout)["plugins"][0]
    assert bridge["ipam"]["dataDir"] == str(layout.cni_ipam)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24"}]]


def test_a_socket_path_too_long_is_refused(tmp_path):
    with pytest.raises(PrimageError, match="too long for a unix socket"):
        Layout(tmp_path / ("x" * 120)).check_socket_length()


# --------------------------------------------------------------------------- host helpers


def test_port_conflicts_name_the_port_and_its_process():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        messages = host.port_conflicts({"etcd clients": ("127.0.0.1", port), "kubelet": ("198.18.0.1", port)})
    assert messages[0].startswith(f"port {port} (etcd clients, on 127.0.0.1) is in use by ")
    assert messages[0].endswith(f"(pid {os.getpid()}) listening on 127.0.0.1:{port}")
    assert len(messages) == 1  # the same port on another address is free


def test_iptables_rule_arguments_keep_quoted_comments():
    line = '-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \\"primage-cluster\\" id: \\"ab\\"" -j CNI-1'
    assert host._rule_args(line)[-2:] == ["-j", "CNI-1"]
    assert host._target(line.split()) == "CNI-1"


def test_new_folders_go_but_shared_ones_keep_what_others_put_there(tmp_path):
    ours, shared, kept, busy = (str(tmp_path / name) for name in ("kubelet", "cni", "etc-cni", "containerd"))
    for folder in (ours, shared, kept, busy):
        os.makedirs(f"{folder}/sub")
    Path(ours, "sub", "state").write_text("the cluster's")
    Path(busy, "s").mkdir()
    Path(busy, "s", "docker-shim.sock").write_text("another engine's")
    removed = host.remove_new_folders([kept], ours=(ours,), shared=(shared, kept, busy))
    assert sorted(removed) == sorted([ours, shared])
    assert Path(busy, "s", "docker-shim.sock").exists()
    assert not Path(busy, "sub").exists()  # its empty part went
    assert Path(kept, "sub").exists()


def test_a_started_process_is_recognised_and_stopped(tmp_path):
    process = host.start("sleeper", ["sleep", "30"], tmp_path / "sleep.log")
    assert host.alive(process)
    assert not host.alive(host.Process("other", process.pid, process.start_ticks + 1, ""))
    host.stop(process, timeout=5)
    assert not host.alive(process)


# --------------------------------------------------------------------------- OCI archives


def test_oci_archives_are_reproducible_and_complete(tmp_path):
    program = tmp_path / "pause"
    program.write_bytes(b"\x7fELF-not-really")
    first = oci.write_archive(
        tmp_path / "a.tar",
        "registry.k8s.io/pause:3.10.2",
        [oci.ImageFile("/pause", program)],
        {"Entrypoint": ["/pause"]},
    )
    second = oci.write_archive(
        tmp_path / "b.tar",
        "registry.k8s.io/pause:3.10.2",
        [oci.ImageFile("/pause", program)],
        {"Entrypoint": ["/pause"]},
    )
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as archive:
        index = json.load(archive.extractfile("index.json"))
        entry = index["manifests"][0]
        assert entry["digest"] == first
        assert entry["annotations"]["io.containerd.image.name"] == "registry.k8s.io/pause:3.10.2"
        manifest_bytes = archive.extractfile(f"blobs/sha256/{first.split(':')[1]}").read()
        assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == first
        layer_digest = json.loads(manifest_bytes)["layers"][0]["digest"].split(":")[1]
        with tarfile.open(fileobj=archive.extractfile(f"blobs/sha256/{layer_digest}")) as layer:
            assert layer.getmember("pause").mode == 0o755


def test_docker_names_are_normalised_as_containerd_names_them():
    assert oci.full_name("debian:trixie-slim") == "docker.io/library/debian:trixie-slim"
    assert oci.full_name("primage/segmentation:0.1.0") == "docker.io/primage/segmentation:0.1.0"
    assert oci.full_name("registry.example.eu:5000/a/b:1") == "registry.example.eu:5000/a/b:1"


def test_the_role_refuses_anonymous_requests_but_on_health_endpoints(layout):
    documents = {d["kind"]: d for d in yaml.safe_load_all(config.render_role_init_config(Settings(), layout))}
    api_server = documents["ClusterConfiguration"]["apiServer"]
    written = config.write_authentication_config(Settings(), layout)
    assert (
        written == layout.kubeconfigs / "authentication" / "authentication-config.yaml"
    )  # where kubeadm's flag points
    assert {"name": "authentication-config", "value": "/etc/kubernetes/authentication/authentication-config.yaml"} in (
        api_server["extraArgs"]
    )
    anonymous = yaml.safe_load(written.read_text())["anonymous"]
    assert anonymous == {
        "enabled": True,
        "conditions": [{"path": path} for path in ROLE_DEFAULTS["kubernetes_apiserver_anonymous_paths"]],
    }
    assert documents["KubeletConfiguration"]["authentication"]["anonymous"] == {"enabled": False}
