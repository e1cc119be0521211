"""The control plane applied the pinned CNI manifest (flannel by default), and only it did."""


def test_pinned_flannel_manifest_applied(control_plane, defaults):
    pinned = defaults["kubernetes_flannel_manifest_url"]
    assert pinned.startswith("https://github.com/flannel-io/flannel/releases/download/v")
    applied = control_plane.file("/var/lib/kubectl-stub/applied.log").content_string.splitlines()
    # converge and idempotence each apply it once; the second apply changes nothing. The other
    # manifest applied is the FUSE device plugin's (test_fuse_device_plugin.py).
    assert applied.count(pinned) == 2
    assert set(applied) == {pinned, "/etc/kubernetes/addons/fuse-device-plugin.yaml"}


def test_cni_applied_with_the_admin_kubeconfig(control_plane, defaults):
    requests = control_plane.file("/var/lib/kubectl-stub/requests.log").content_string.splitlines()
    assert f"apply --filename {defaults['kubernetes_flannel_manifest_url']}" in requests


def test_workers_apply_nothing(worker):
    assert not worker.file("/var/lib/kubectl-stub").exists
