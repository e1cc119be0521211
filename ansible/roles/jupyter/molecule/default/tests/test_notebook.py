"""The notebook StatefulSet and Service, as the API server stores them, and the published URL."""

from kube_contract.verify import one

from conftest import NAMESPACE


def _statefulset(objects):
    return one(objects, "StatefulSet", NAMESPACE, "jupyter")


def _container(objects):
    containers = _statefulset(objects)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["notebook"]
    return containers[0]


def test_namespace_carries_the_standard_labels(contract_objects):
    labels = one(contract_objects, "Namespace", name=NAMESPACE)["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "jupyter"
    assert labels["app.kubernetes.io/part-of"] == "primage"
    assert labels["app.kubernetes.io/managed-by"] == "primage.platform"


def test_statefulset_runs_one_notebook_with_a_pinned_image(contract_objects):
    sts = _statefulset(contract_objects)
    assert sts["spec"]["replicas"] == 1
    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    container = _container(contract_objects)
    assert container["image"] == "registry.primage.test:5000/primage/jupyter:1.0.0"
    assert container["ports"] == [{"name": "http", "containerPort": 8888, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/api", "port": "http"}


def test_notebook_reads_its_token_from_the_secret(contract_objects):
    env = {e["name"]: e for e in _container(contract_objects)["env"]}
    token = env["JUPYTER_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"] == {"secretKeyRef": {"name": "notebook-token", "key": "token"}}


def test_pod_mounts_onedata_with_fuse_and_sys_admin_only(contract_objects):
    pod = _statefulset(contract_objects)["spec"]["template"]["spec"]
    container = _container(contract_objects)
    assert {"name": "fuse", "hostPath": {"path": "/dev/fuse", "type": "CharDevice"}} in pod["volumes"]
    assert {"name": "fuse", "mountPath": "/dev/fuse"} in container["volumeMounts"]
    assert container["securityContext"]["capabilities"] == {"add": ["SYS_ADMIN"]}
    assert container["securityContext"]["privileged"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["ONECLIENT_PROVIDER_HOST"]["value"] == "provider.onedata.test"
    assert env["ONECLIENT_ACCESS_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "onedata-token", "key": "token"}}


def test_pod_restarts_when_a_secret_it_reads_changes(contract_objects):
    annotation = _statefulset(contract_objects)["spec"]["template"]["metadata"]["annotations"]
    versions = dict(pair.split("=") for pair in annotation["primage.eu/secret-versions"].split(","))
    for name in ("notebook-token", "onedata-token"):
        assert versions[name] == one(contract_objects, "Secret", NAMESPACE, name)["metadata"]["resourceVersion"]


def test_service_publishes_the_notebook_on_a_node_port(contract_objects):
    service = one(contract_objects, "Service", NAMESPACE, "jupyter")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30888
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == _statefulset(contract_objects)["spec"]["selector"]["matchLabels"]


def test_url_is_published_without_the_token(host):
    url = host.file("/etc/primage/apps/jupyter/notebook-url")
    assert url.mode == 0o644
    assert url.content_string == "http://front.primage.test:30888/\n"
    token = host.file("/etc/primage/apps/jupyter/token").content_string
    assert token not in url.content_string


def test_every_write_is_a_server_side_apply_by_the_role(contract_objects, contract_requests):
    for obj in contract_objects:
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
        assert managers == {("primage-platform", "Apply")}, obj["metadata"]["name"]
    writes = [r for r in contract_requests if r["method"] in ("POST", "PUT", "PATCH")]
    assert {r["content_type"] for r in writes} == {"application/apply-patch+yaml"}
