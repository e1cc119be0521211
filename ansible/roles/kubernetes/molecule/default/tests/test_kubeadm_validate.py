"""The rendered kubeadm configurations pass the schema validation of the REAL kubeadm v1.36.3.

The binary is built on the host from the Go module proxy and named by PRIMAGE_KUBEADM
(the harness sets it). Without it this test fails on purpose: an unvalidated template
must not look like a passing one.
"""

import os
import subprocess
from pathlib import Path

import pytest


def real_kubeadm() -> str:
    """The real kubeadm named by PRIMAGE_KUBEADM; fails the calling test (never skips) without it."""
    path = os.environ.get("PRIMAGE_KUBEADM", "")
    if not path:
        pytest.fail(
            "PRIMAGE_KUBEADM is not set: it must name the real kubeadm v1.36.3 binary "
            "(e.g. ~/.cache/primage/kube-tools/v1.36.3/bin/kubeadm) that validates the rendered configs"
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"PRIMAGE_KUBEADM={path} is not an executable file: build the real kubeadm v1.36.3 first")
    version = subprocess.run([path, "version", "-o", "short"], capture_output=True, text=True, check=False)
    if version.stdout.strip() != "v1.36.3":
        pytest.fail(
            f"PRIMAGE_KUBEADM={path} is not kubeadm v1.36.3 (it says {version.stdout.strip()!r} "
            f"{version.stderr.strip()!r})"
        )
    return path


def validate(kubeadm: str, text: str, directory: Path) -> subprocess.CompletedProcess:
    config = directory / "kubeadm.yaml"
    config.touch(mode=0o600)
    config.write_text(text, encoding="utf-8")
    return subprocess.run(
        [kubeadm, "config", "validate", "--config", str(config)], capture_output=True, text=True, check=False
    )


def test_init_and_cluster_configuration_validate(control_plane, tmp_path):
    kubeadm = real_kubeadm()
    text = control_plane.file("/etc/kubernetes/kubeadm/kubeadm-init.yaml").content_string
    result = validate(kubeadm, text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_join_configuration_validates(worker, tmp_path):
    kubeadm = real_kubeadm()
    text = worker.file("/etc/kubernetes/kubeadm/kubeadm-join.yaml").content_string
    result = validate(kubeadm, text, tmp_path)
    # Never print the file: it holds the bootstrap token.
    assert result.returncode == 0, result.stdout + result.stderr


def test_containerd_pause_image_is_the_one_kubeadm_expects(control_plane, node, tmp_path):
    kubeadm = real_kubeadm()
    """kubeadm's image list for the rendered config names the sandbox image containerd is given."""
    config = tmp_path / "kubeadm.yaml"
    config.write_text(control_plane.file("/etc/kubernetes/kubeadm/kubeadm-init.yaml").content_string, encoding="utf-8")
    result = subprocess.run(
        [kubeadm, "config", "images", "list", "--config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    pause = [image for image in result.stdout.split() if "/pause:" in image]
    assert len(pause) == 1
    assert f'"{pause[0]}"' in node.file("/etc/containerd/config.toml").content_string
