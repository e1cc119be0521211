"""The control plane renders and applies the project's FUSE device plugin DaemonSet."""

import subprocess
import sys
from pathlib import Path

import yaml

MANIFEST = "/etc/kubernetes/addons/fuse-device-plugin.yaml"
APP_DEFAULTS = Path(__file__).resolve().parents[4] / "kubernetes_app" / "defaults" / "main.yml"


def _daemonset(control_plane) -> dict:
    manifest = control_plane.file(MANIFEST)
    assert manifest.mode == 0o644
    documents = [d for d in yaml.safe_load_all(manifest.content_string) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [("DaemonSet", "fuse-device-plugin")]
    return documents[0]


def test_the_daemonset_runs_the_pinned_image_of_the_projects_registry(control_plane, defaults):
    container = _daemonset(control_plane)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == defaults["kubernetes_fuse_device_plugin_image"]
    assert container["image"].startswith("registry.gitlab.com/primageproject/primage-platform/")
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_it_advertises_the_resource_the_application_pods_request(control_plane):
    container = _daemonset(control_plane)["spec"]["template"]["spec"]["containers"][0]
    requested = yaml.safe_load(APP_DEFAULTS.read_text(encoding="utf-8"))["kubernetes_app_fuse_resource"]
    assert f"--resource-name={requested}" in container["args"]
    assert "--devices=64" in container["args"]


def test_it_runs_on_every_node_unprivileged(control_plane):
    pod = _daemonset(control_plane)["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    context = pod["containers"][0]["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert "privileged" not in context
    paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert paths == {"device-plugins": "/var/lib/kubelet/device-plugins", "fuse": "/dev/fuse"}


def test_the_daemonset_is_valid_kubernetes_1_36(control_plane, tmp_path):
    copy = tmp_path / "fuse-device-plugin.yaml"
    copy.write_text(control_plane.file(MANIFEST).content_string, encoding="utf-8")
    tool = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(tool), "--strict", "--kubernetes-version", "1.36.0", str(copy)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_is_applied_with_the_admin_kubeconfig_on_the_control_plane_only(control_plane, worker):
    requests = control_plane.file("/var/lib/kubectl-stub/requests.log").content_string.splitlines()
    assert f"apply --filename {MANIFEST}" in requests
    assert not worker.file(MANIFEST).exists
