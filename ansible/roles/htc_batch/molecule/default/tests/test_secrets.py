"""Where the Onedata token and the registry password end up: only in their Secrets."""

import json
import os

from kube_contract.verify import requests_mentioning, scan_secrets, secret_value

from conftest import NAMESPACE

TOKEN = os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]
PASSWORD = os.environ["PRIMAGE_TEST_REGISTRY_PASSWORD"]


def test_onedata_token_is_stored_base64_in_its_secret(contract_objects):
    assert secret_value(contract_objects, NAMESPACE, "onedata-token", "token") == TOKEN


def test_registry_secret_holds_the_credentials(contract_objects):
    config = json.loads(secret_value(contract_objects, NAMESPACE, "registry-credentials", ".dockerconfigjson"))
    entry = config["auths"]["registry.primage.test:5000"]
    assert entry["username"] == "primage-ci"
    assert entry["password"] == PASSWORD


def test_secrets_travel_only_in_secret_request_bodies(contract_requests):
    for value, secret in ((TOKEN, "onedata-token"), (PASSWORD, "registry-credentials")):
        carriers = requests_mentioning(contract_requests, value)
        assert carriers, f"no request carried the {secret} value"
        for request in carriers:
            assert request["path"] == f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret}"
            assert request["method"] == "PATCH"
            assert value not in json.dumps(request["query"]) + request["path"]


def test_no_client_side_apply_annotation_copies_the_secrets(contract_objects):
    for obj in contract_objects:
        annotations = obj["metadata"].get("annotations") or {}
        assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations


def test_no_process_or_world_readable_file_holds_a_secret(host):
    report = scan_secrets(host)
    assert report["values_checked"] >= 4
    assert report["processes"] == []
    assert report["world_readable_files"] == []


def test_inspection_copies_of_secrets_are_redacted_and_root_only(host):
    for name in ("10-secret-onedata-token.yaml", "11-secret-registry.yaml"):
        copy = host.file(f"/etc/primage/apps/htc-batch/{name}")
        assert copy.mode == 0o600
        assert copy.user == "root"
        content = copy.content_string
        assert "UkVEQUNURUQ=" in content
        assert TOKEN not in content
        assert PASSWORD not in content
