"""Every stored object and every written manifest against the Kubernetes 1.36 schema, strictly."""

import json

import yaml
from kube_contract.verify import validate_schema

from conftest import NAMESPACE


def test_stored_objects_are_valid_kubernetes_1_36(contract_objects, tmp_path):
    documents = {f"{o['kind']}-{o['metadata']['name']}": o for o in contract_objects}
    assert {o["kind"] for o in contract_objects} == {"Namespace", "Secret", "ConfigMap", "Job"}
    result = validate_schema(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_written_manifests_are_valid_kubernetes_1_36(host, tmp_path):
    folder = f"/etc/primage/apps/{NAMESPACE}"
    names = host.check_output(f"ls {folder}").split()
    assert len(names) == 5
    documents = {n: yaml.safe_load(host.file(f"{folder}/{n}").content_string) for n in names}
    result = validate_schema(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.dumps(documents)
