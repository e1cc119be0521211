"""kubelet, kubeadm and kubectl installed from the mirror at the pinned version, and held."""

import re
from urllib.parse import urlparse

import pytest

PACKAGES = ["kubelet", "kubeadm", "kubectl"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_pinned_version(node, defaults, name):
    package = node.package(name)
    assert package.is_installed
    assert package.version == f"{defaults['kubernetes_version']}-{defaults['kubernetes_package_revision']}"


@pytest.mark.parametrize("name", PACKAGES)
def test_package_held(node, name):
    assert node.check_output(f"dpkg-query -W -f='${{Status}}' {name}").startswith("hold ")


def test_packages_came_from_the_mirror(node, scenario_vars):
    mirror = urlparse(scenario_vars["kubernetes_apt_repository_url"])
    policy = node.check_output("apt-cache policy kubeadm")
    # apt prints file:///srv/x/ as "file:/srv/x"; the installed version's only source is the mirror.
    origins = re.findall(r"^\s+\d+ (\S+)", policy.split("***", 1)[1], flags=re.M)
    assert origins == [f"{mirror.scheme}:{mirror.path.rstrip('/')}", "/var/lib/dpkg/status"]


def test_kubelet_service_runs(node):
    """kubeadm init/join started it; the stub kubelet only sleeps."""
    kubelet = node.service("kubelet")
    assert kubelet.is_enabled
    assert kubelet.is_running
