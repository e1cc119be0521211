"""Secret values only in their Secrets: not in other objects, annotations, files or command lines."""

import os

from cluster_verify import scan_secrets, without_secrets

from conftest import NAMESPACE

VALUES = {
    "onedata-token": os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"],
    "registry-credentials": os.environ["PRIMAGE_TEST_REGISTRY_PASSWORD"],
    "demo": os.environ["PRIMAGE_TEST_APP_SECRET"],
}


def test_each_value_is_in_its_secret_and_no_other_object(kube, objects):
    assert kube.secret_value(NAMESPACE, "demo", "key") == VALUES["demo"]
    assert VALUES["registry-credentials"] in kube.secret_value(NAMESPACE, "registry-credentials", ".dockerconfigjson")
    others = without_secrets(objects)
    assert not [name for name, value in VALUES.items() if value in others]


def test_no_last_applied_annotation(objects):
    for obj in objects:
        assert "kubectl.kubernetes.io/last-applied-configuration" not in (obj["metadata"].get("annotations") or {})


def test_redacted_inspection_copies(host):
    for name in ("secret-onedata-token.yaml", "secret-registry-credentials.yaml", "secret-demo.yaml"):
        content = host.file(f"/etc/primage/apps/demo/{name}").content_string
        assert "UkVEQUNURUQ=" in content
        assert not any(value in content for value in VALUES.values())


def test_no_process_or_world_readable_file_holds_a_secret(host):
    report = scan_secrets(host.backend.name, list(VALUES.values()))
    assert report["values_checked"] == 6
    assert report["processes"] == []
    assert report["world_readable_files"] == []
