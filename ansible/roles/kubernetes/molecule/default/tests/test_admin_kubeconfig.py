"""The admin kubeconfig of the new cluster is given to kubernetes_admin_user on the control plane."""

import base64

import yaml


def test_admin_kubeconfig_for_the_admin_user(control_plane, scenario_vars):
    user = scenario_vars["kubernetes_admin_user"]
    home = control_plane.user(user).home
    kube_dir = control_plane.file(f"{home}/.kube")
    assert (kube_dir.user, kube_dir.mode) == (user, 0o700)
    config = control_plane.file(f"{home}/.kube/config")
    assert (config.user, config.mode) == (user, 0o600)
    assert config.content == control_plane.file("/etc/kubernetes/admin.conf").content


def test_admin_kubeconfig_points_at_the_cluster(control_plane, init_config):
    config = yaml.safe_load(control_plane.file("/home/cloudadm/.kube/config").content_string)
    endpoint = init_config["InitConfiguration"]["localAPIEndpoint"]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://{endpoint['advertiseAddress']}:{endpoint['bindPort']}"
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    assert ca == control_plane.file("/etc/kubernetes/pki/ca.crt").content_string


def test_admin_user_can_read_it(control_plane):
    assert control_plane.run("runuser -u cloudadm -- test -r /home/cloudadm/.kube/config").rc == 0
