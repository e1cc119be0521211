"""Namespace, Secrets and the facts the application roles build their manifests from."""

import json
import os

from kube_contract.verify import one, secret_value, validate_schema

from conftest import NAMESPACE

LABELS = {
    "app.kubernetes.io/name": "demo",
    "app.kubernetes.io/part-of": "primage",
    "app.kubernetes.io/managed-by": "primage.platform",
    "app.kubernetes.io/component": "demo",
}


def test_namespace_and_every_object_carry_the_labels(contract_objects, facts):
    assert facts["labels"] == LABELS
    for obj in contract_objects:
        assert LABELS.items() <= obj["metadata"]["labels"].items(), obj["metadata"]["name"]


def test_onedata_token_secret(contract_objects):
    assert (
        secret_value(contract_objects, NAMESPACE, "onedata-token", "token") == os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]
    )


def test_pull_secret_for_the_image_registry(contract_objects):
    secret = one(contract_objects, "Secret", NAMESPACE, "registry-credentials")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(secret_value(contract_objects, NAMESPACE, "registry-credentials", ".dockerconfigjson"))["auths"]
    assert list(auths) == ["registry.primage.test:5000"]
    assert auths["registry.primage.test:5000"]["username"] == "primage-ci"


def test_pod_wiring_for_in_pod_oneclient(facts):
    pod = facts["pod"]
    env = {e["name"]: e for e in pod["env"]}
    assert env["ONECLIENT_PROVIDER_HOST"]["value"] == "provider.onedata.test"
    assert env["ONECLIENT_MOUNT_POINT"]["value"] == "/mnt/space"
    assert env["ONECLIENT_ACCESS_TOKEN"] == {
        "name": "ONECLIENT_ACCESS_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "onedata-token", "key": "token"}},
    }
    assert pod["volumes"] == [{"name": "fuse", "hostPath": {"path": "/dev/fuse", "type": "CharDevice"}}]
    assert pod["volume_mounts"] == [{"name": "fuse", "mountPath": "/dev/fuse"}]
    assert pod["security_context"] == {
        "privileged": False,
        "capabilities": {"add": ["SYS_ADMIN"]},
        "appArmorProfile": {"type": "Unconfined"},
    }
    assert pod["image_pull_secrets"] == [{"name": "registry-credentials"}]


def test_apply_entry_point_publishes_objects_and_secret_versions(contract_objects, facts):
    assert facts["applied"] == ["demo"]
    for name in ("onedata-token", "registry-credentials", "demo"):
        stored = one(contract_objects, "Secret", NAMESPACE, name)
        assert facts["secret_versions"][name] == stored["metadata"]["resourceVersion"]


def test_manifests_written_for_inspection(host, facts):
    assert facts["manifests_dir"] == "/etc/primage/apps/demo"
    expected = {
        "00-namespace.yaml": 0o644,
        "10-secret-onedata-token.yaml": 0o600,
        "11-secret-registry.yaml": 0o600,
        "20-secret-demo.yaml": 0o600,
        "30-configmap-demo.yaml": 0o644,
    }
    assert sorted(host.check_output("ls /etc/primage/apps/demo").split()) == sorted(expected)
    for name, mode in expected.items():
        assert host.file(f"/etc/primage/apps/demo/{name}").mode == mode


def test_stored_objects_are_valid_kubernetes_1_36(contract_objects, tmp_path):
    documents = {f"{o['kind']}-{o['metadata']['name']}": o for o in contract_objects}
    result = validate_schema(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
