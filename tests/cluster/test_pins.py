"""The versions the cluster is built from are the ones kubeadm of the pinned Kubernetes expects."""

from __future__ import annotations

import subprocess

import pytest

from primage.cluster import components

pytestmark = pytest.mark.cluster


def _kubeadm_images() -> list[str]:
    kubeadm = components.binaries()["kubeadm"]
    version = f"v{components.pins().kubernetes_version}"
    result = subprocess.run(
        [str(kubeadm), "config", "images", "list", f"--kubernetes-version={version}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_etcd_is_the_version_kubeadm_defaults_to(built):
    etcd = next(image for image in _kubeadm_images() if "/etcd:" in image)
    assert etcd.split(":")[1].split("-")[0] == components.pins().module("etcd").version.removeprefix("v")


def test_the_pause_image_is_the_one_kubeadm_expects(built):
    assert components.pins().pause_image in _kubeadm_images()


def test_every_built_binary_reports_its_pinned_version(built):
    binaries = components.binaries()
    version = f"v{components.pins().kubernetes_version}"
    for command in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
        output = subprocess.run([str(binaries[command]), "--version"], capture_output=True, text=True).stdout
        assert output.split()[-1] == version, command
    for module in components.pins().go_modules:
        command = [str(binaries[module.check[0]]), *module.check[1:]]
        output = subprocess.run(command, capture_output=True, text=True)
        assert module.expect in output.stdout + output.stderr, module.name
    pause = subprocess.run([str(binaries["pause"]), "-v"], capture_output=True, text=True)
    assert f"v{components.pins().pause_version}" in pause.stdout + pause.stderr
