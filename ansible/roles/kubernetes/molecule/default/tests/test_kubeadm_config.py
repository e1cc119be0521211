"""The rendered kubeadm and kubelet configurations parse and carry the expected values."""

import yaml


def test_init_config_is_root_only(control_plane):
    config = control_plane.file("/etc/kubernetes/kubeadm/kubeadm-init.yaml")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)
    assert control_plane.file("/etc/kubernetes/kubeadm").mode == 0o700


def test_init_config_kinds_and_api_versions(init_config):
    assert {kind: doc["apiVersion"] for kind, doc in init_config.items()} == {
        "InitConfiguration": "kubeadm.k8s.io/v1beta4",
        "ClusterConfiguration": "kubeadm.k8s.io/v1beta4",
        "KubeletConfiguration": "kubelet.config.k8s.io/v1beta1",
    }


def test_init_configuration(init_config, control_plane):
    init = init_config["InitConfiguration"]
    address = control_plane.interface.default().addresses[0]
    assert init["localAPIEndpoint"] == {"advertiseAddress": address, "bindPort": 6443}
    assert init["nodeRegistration"]["name"] == control_plane.check_output("uname -n").lower()
    assert init["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert "bootstrapTokens" not in init


def test_cluster_configuration(init_config, defaults, scenario_vars):
    cluster = init_config["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == f"v{defaults['kubernetes_version']}"
    assert cluster["imageRepository"] == scenario_vars["kubernetes_image_repository"]
    # flannel is the default CNI, and its manifest expects 10.244.0.0/16.
    assert cluster["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }


def test_kubelet_configuration(init_config, control_plane):
    kubelet = init_config["KubeletConfiguration"]
    assert kubelet["cgroupDriver"] == "systemd"
    # The (stub) kubeadm init handed it to the kubelet, as the real one does.
    assert "cgroupDriver: systemd" in control_plane.file("/var/lib/kubelet/config.yaml").content_string


def test_control_plane_initialised_once(control_plane):
    events = control_plane.file("/var/lib/kubeadm-stub/events.log").content_string.splitlines()
    assert len([line for line in events if line.startswith("init ")]) == 1
    assert not [line for line in events if line.startswith("FAILED")]


def test_the_api_server_takes_no_anonymous_request_but_on_health_endpoints(init_config, control_plane, defaults):
    api_server = init_config["ClusterConfiguration"]["apiServer"]
    path = "/etc/kubernetes/authentication/authentication-config.yaml"
    assert {"name": "authentication-config", "value": path} in api_server["extraArgs"]
    assert api_server["extraVolumes"] == [
        {
            "name": "authentication-config",
            "hostPath": "/etc/kubernetes/authentication",
            "mountPath": "/etc/kubernetes/authentication",
            "readOnly": True,
            "pathType": "Directory",
        }
    ]
    assert "anonymous-auth" not in {arg["name"] for arg in api_server["extraArgs"]}  # refused beside the file
    authentication = control_plane.file(path)
    assert (authentication.user, authentication.mode) == ("root", 0o644)
    document = yaml.safe_load(authentication.content_string)
    assert document["kind"] == "AuthenticationConfiguration"
    assert document["anonymous"] == {
        "enabled": True,
        "conditions": [{"path": path} for path in defaults["kubernetes_apiserver_anonymous_paths"]],
    }


def test_the_kubelet_refuses_anonymous_requests(init_config):
    kubelet = init_config["KubeletConfiguration"]
    assert kubelet["authentication"]["anonymous"] == {"enabled": False}
    assert kubelet["authentication"]["webhook"] == {"enabled": True}
    assert kubelet["authorization"] == {"mode": "Webhook"}
