"""The notebook on the real cluster: the jupyter image serving through its Service, token required."""

import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from http.client import HTTPException

import pytest
from cluster_verify import http

from conftest import NAMESPACE, TLS_DIR, notebook_token


def _statefulset(kube):
    return kube.get("statefulset", "jupyter", NAMESPACE)


def _container(kube):
    containers = _statefulset(kube)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["notebook"]
    return containers[0]


def test_the_statefulset_runs_one_ready_notebook_of_the_loaded_image(kube):
    sts = _statefulset(kube)
    assert sts["spec"]["replicas"] == 1
    assert sts["status"]["readyReplicas"] == 1
    container = _container(kube)
    assert container["image"] == os.environ["PRIMAGE_IMAGE_JUPYTER"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    pod = kube.get("pod", "jupyter-0", NAMESPACE)
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_it_runs_as_the_images_user_with_a_read_only_root_and_its_home_on_a_volume(kube):
    pod = _statefulset(kube)["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (1000, 1000, 1000)
    assert context["runAsNonRoot"] is True
    container = _container(kube)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["home"] == "/home/primage"
    assert mounts["tmp"] == "/tmp"


def test_the_node_port_refuses_requests_without_the_token(url, trusted):
    status, _ = http(f"{url}/api/status", context=trusted)
    assert status == 403
    status, _ = http(f"{url}/api/status", token="not-the-token-of-this-notebook", context=trusted)  # noqa: S106
    assert status == 403


def test_the_node_port_answers_with_the_token(url, host, trusted):
    status, body = http(f"{url}/api/status", token=notebook_token(host), context=trusted)
    assert status == 200, body
    assert "started" in json.loads(body)


def test_the_node_port_speaks_only_https_with_a_certificate_of_the_roles_ca(url, host, trusted):
    """Verified against the role's CA for the node's address; refused by a client without that CA;
    no HTTP answer at all to plain HTTP on the same port."""
    with pytest.raises(urllib.error.URLError) as untrusted:
        http(f"{url}/api/status", context=ssl.create_default_context())
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises((HTTPException, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(url.replace("https://", "http://") + "/api", timeout=10)  # noqa: S310
    assert http(f"{url}/api/status", token=notebook_token(host), context=trusted)[0] == 200


def test_the_ca_and_the_keys_stay_root_only_on_the_front_end_and_the_secret_holds_the_pair(kube, host):
    folder = host.file(TLS_DIR)
    assert (folder.mode, folder.user, folder.group) == (0o700, "root", "root")
    for name in ("ca.key", "notebook.key"):
        key = host.file(f"{TLS_DIR}/{name}")
        assert (key.mode, key.user) == (0o600, "root"), name
    secret = kube.get("secret", "notebook-tls", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["tls.crt"] == host.file(f"{TLS_DIR}/notebook.crt").content_string
    assert data["tls.key"] == host.file(f"{TLS_DIR}/notebook.key").content_string
    assert "ca.key" not in json.dumps(secret), "the CA's key never leaves the front end"


def test_the_published_url_answers_from_the_front_end(host):
    """The URL the role wrote, asked from the front end with the token read there (never a command line),
    trusting the CA the role keeps there."""
    url = host.file("/etc/primage/apps/jupyter/notebook-url").content_string.strip()
    assert url == f"https://{os.environ['PRIMAGE_CLUSTER_NODE_IP']}:30888/"
    probe = (
        "import ssl, sys, urllib.request, urllib.error\n"
        "token = open('/etc/primage/apps/jupyter/token').read().strip()\n"
        f"context = ssl.create_default_context(cafile='{TLS_DIR}/ca.crt')\n"
        "def get(headers):\n"
        f"    request = urllib.request.Request('{url}api/status', headers=headers)\n"
        "    try:\n"
        "        return urllib.request.urlopen(request, timeout=10, context=context).status\n"
        "    except urllib.error.HTTPError as error:\n"
        "        return error.code\n"
        "print(get({}), get({'Authorization': 'token ' + token}))\n"
    )
    result = subprocess.run(
        ["docker", "exec", "-i", host.backend.name, "python3", "-"], input=probe, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["403", "200"]


def test_the_home_holds_the_example_notebook_and_a_link_to_the_space(url, host, trusted):
    status, body = http(f"{url}/api/contents", token=notebook_token(host), context=trusted)
    assert status == 200, body
    names = {item["name"] for item in json.loads(body)["content"]}
    assert {"examples", "space"} <= names


def test_the_notebook_reads_and_writes_the_nodes_space(url, host, space, trusted):
    """Node mode end to end: a file of the front end's mount read in the pod, one written there back."""
    token = notebook_token(host)
    status, body = http(f"{url}/api/contents/space/from-the-front-end.txt?content=1", token=token, context=trusted)
    assert status == 200, body
    assert json.loads(body)["content"] == "written on the front end\n"
    written = {"type": "file", "format": "text", "content": "written in the notebook\n"}
    status, body = http(
        f"{url}/api/contents/space/from-the-notebook.txt", token=token, method="PUT", body=written, context=trusted
    )
    assert status in (200, 201), body
    copy = space / "from-the-notebook.txt"
    assert copy.read_text() == "written in the notebook\n"
    assert copy.stat().st_uid == 1000
    assert host.file(f"{space}/from-the-notebook.txt").content_string == "written in the notebook\n"


def test_node_mode_sees_the_nodes_mount_without_capabilities(kube, space):
    pod = _statefulset(kube)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "onedata-space")
    assert volume["hostPath"] == {"path": str(space), "type": "Directory"}
    mount = next(m for m in _container(kube)["volumeMounts"] if m["name"] == "onedata-space")
    assert mount["mountPropagation"] == "HostToContainer"
    assert not [e for e in _container(kube)["env"] if e["name"].startswith("ONECLIENT_")]


def test_the_service_publishes_the_notebook_on_its_node_port(kube):
    service = kube.get("service", "jupyter", NAMESPACE)
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30888
    assert service["spec"]["ports"][0]["targetPort"] == "https"
    assert service["spec"]["selector"] == _statefulset(kube)["spec"]["selector"]["matchLabels"]


def test_every_object_is_owned_by_the_role_through_server_side_apply(objects):
    assert {o["kind"] for o in objects} == {"Namespace", "Secret", "Service", "StatefulSet"}
    for obj in objects:
        applied = [m for m in obj["metadata"]["managedFields"] if m["manager"] == "primage-platform"]
        assert [m["operation"] for m in applied] == ["Apply"], obj["metadata"]["name"]
        assert "kubectl.kubernetes.io/last-applied-configuration" not in (obj["metadata"].get("annotations") or {})
