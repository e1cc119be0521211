"""Namespace, Secrets and the facts the application roles build their manifests from, on the real cluster."""

import json
import os

from conftest import NAMESPACE

LABELS = {
    "app.kubernetes.io/name": "demo",
    "app.kubernetes.io/part-of": "primage",
    "app.kubernetes.io/managed-by": "primage.platform",
    "app.kubernetes.io/component": "demo",
}


def test_namespace_and_every_object_carry_the_labels(objects, facts):
    assert facts["labels"] == LABELS
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == {
        ("Namespace", "demo"),
        ("Secret", "onedata-token"),
        ("Secret", "registry-credentials"),
        ("Secret", "demo"),
        ("ConfigMap", "demo"),
    }
    for obj in objects:
        assert LABELS.items() <= obj["metadata"]["labels"].items(), obj["metadata"]["name"]


def test_onedata_token_secret(kube):
    assert kube.secret_value(NAMESPACE, "onedata-token", "token") == os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]


def test_pull_secret_for_the_image_registry(kube):
    secret = kube.get("secret", "registry-credentials", NAMESPACE)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(kube.secret_value(NAMESPACE, "registry-credentials", ".dockerconfigjson"))["auths"]
    assert list(auths) == ["registry.primage.test:5000"]
    assert auths["registry.primage.test:5000"]["username"] == "primage-ci"


def test_pod_wiring_for_in_pod_oneclient(facts):
    pod = facts["pod"]
    env = {e["name"]: e for e in pod["env"]}
    assert pod["image"] == "registry.primage.test:5000/primage/demo:1.0.0-onedata"
    assert env["ONECLIENT_PROVIDER_HOST"]["value"] == "provider.onedata.test"
    assert env["ONECLIENT_MOUNT_POINT"]["value"] == "/mnt/space"
    assert env["ONECLIENT_ACCESS_TOKEN"] == {
        "name": "ONECLIENT_ACCESS_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "onedata-token", "key": "token"}},
    }
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert pod["volume_mounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["resources"] == {"primage.eu/fuse": 1}
    assert pod["container_security_context"] == {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]},
        "appArmorProfile": {"type": "Unconfined"},
    }
    assert pod["security_context"]["fsGroup"] == 1000
    assert pod["image_pull_secrets"] == [{"name": "registry-credentials"}]


def test_apply_entry_point_publishes_objects_and_secret_versions(kube, facts):
    assert facts["applied"] == ["demo"]
    for name in ("onedata-token", "registry-credentials", "demo"):
        stored = kube.get("secret", name, NAMESPACE)
        assert facts["secret_versions"][name] == stored["metadata"]["resourceVersion"]


def test_manifests_written_for_inspection(host, facts):
    assert facts["manifests_dir"] == "/etc/primage/apps/demo"
    expected = {
        "namespace-demo.yaml": 0o644,
        "secret-onedata-token.yaml": 0o600,
        "secret-registry-credentials.yaml": 0o600,
        "secret-demo.yaml": 0o600,
        "configmap-demo.yaml": 0o644,
    }
    assert sorted(host.check_output("ls /etc/primage/apps/demo").split()) == sorted(expected)
    for name, mode in expected.items():
        assert host.file(f"/etc/primage/apps/demo/{name}").mode == mode


def test_every_object_is_owned_by_the_role_through_server_side_apply(objects):
    for obj in objects:
        applied = [m for m in obj["metadata"]["managedFields"] if m["manager"] == "primage-platform"]
        assert [m["operation"] for m in applied] == ["Apply"], obj["metadata"]["name"]
