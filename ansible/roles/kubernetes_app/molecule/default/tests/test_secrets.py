"""Secret values only in their Secrets: not in other requests, annotations, files or command lines."""

import os

from kube_contract.verify import requests_mentioning, scan_secrets

from conftest import NAMESPACE

VALUES = {
    "onedata-token": os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"],
    "registry-credentials": os.environ["PRIMAGE_TEST_REGISTRY_PASSWORD"],
    "demo": os.environ["PRIMAGE_TEST_APP_SECRET"],
}


def test_values_travel_only_in_their_secret_apply_requests(contract_requests):
    for secret, value in VALUES.items():
        carriers = requests_mentioning(contract_requests, value)
        assert carriers, secret
        assert {(r["method"], r["path"]) for r in carriers} == {
            ("PATCH", f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret}")
        }


def test_no_last_applied_annotation(contract_objects):
    for obj in contract_objects:
        assert "kubectl.kubernetes.io/last-applied-configuration" not in (obj["metadata"].get("annotations") or {})


def test_redacted_inspection_copies(host):
    for name in ("10-secret-onedata-token.yaml", "11-secret-registry.yaml", "20-secret-demo.yaml"):
        content = host.file(f"/etc/primage/apps/demo/{name}").content_string
        assert "UkVEQUNURUQ=" in content
        assert not any(value in content for value in VALUES.values())


def test_no_process_or_world_readable_file_holds_a_secret(host):
    report = scan_secrets(host)
    assert report["values_checked"] >= 6
    assert report["processes"] == []
    assert report["world_readable_files"] == []
