"""containerd from the distribution's archive, running, as a CRI with systemd cgroups."""

import tomllib


def test_containerd_package_from_the_archive(node):
    package = node.package("containerd")
    assert package.is_installed
    policy = node.check_output("apt-cache policy containerd")
    assert "deb.debian.org" in policy or "archive.ubuntu.com" in policy


def test_containerd_service_running_and_enabled(node):
    service = node.service("containerd")
    assert service.is_running
    assert service.is_enabled
    assert node.socket("unix:///run/containerd/containerd.sock").is_listening


def test_containerd_config_uses_systemd_cgroups_and_the_mirror_pause_image(node, scenario_vars, defaults):
    config_file = node.file("/etc/containerd/config.toml")
    assert config_file.user == "root"
    assert config_file.mode == 0o644
    config = tomllib.loads(config_file.content_string)
    pause = f"{scenario_vars['kubernetes_image_repository']}/pause:{defaults['kubernetes_pause_version']}"
    if config["version"] == 3:
        runtime = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]
        sandbox = config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"]
    else:
        assert config["version"] == 2
        cri = config["plugins"]["io.containerd.grpc.v1.cri"]
        runtime = cri["containerd"]
        sandbox = cri["sandbox_image"]
    assert runtime["default_runtime_name"] == "runc"
    assert runtime["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert sandbox == pause


def test_containerd_config_version_matches_the_installed_containerd(node):
    config = tomllib.loads(node.file("/etc/containerd/config.toml").content_string)
    major = int(node.check_output("containerd --version").split()[2].lstrip("v").split(".")[0])
    assert config["version"] == (3 if major >= 2 else 2)


def test_containerd_parses_the_rendered_config(node):
    dump = node.check_output("containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert "registry.primage.invalid/k8s/pause:" in dump


def test_containerd_started_after_its_config_was_written(node):
    """The restart handler ran, so the running daemon uses the rendered config."""
    pid = node.check_output("systemctl show --property MainPID --value containerd")
    running_for = int(node.check_output(f"ps -o etimes= -p {pid}"))
    config_age = int(node.check_output("echo $(( $(date +%s) - $(stat -c %Y /etc/containerd/config.toml) ))"))
    assert running_for <= config_age
