"""Every stored object and every written manifest against the Kubernetes 1.36 schema, strictly."""

from kube_contract.verify import validate_schema, written_manifests

from conftest import NAMESPACE


def test_stored_objects_are_valid_kubernetes_1_36(contract_objects, tmp_path):
    documents = {f"{o['kind']}-{o['metadata']['name']}": o for o in contract_objects}
    assert {o["kind"] for o in contract_objects} == {"Namespace", "Secret", "Service", "StatefulSet"}
    result = validate_schema(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_written_manifests_are_valid_kubernetes_1_36(host, tmp_path):
    documents = written_manifests(host, NAMESPACE)
    assert len(documents) == 5
    result = validate_schema(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
