"""Every stored object and every written manifest against the Kubernetes 1.36 schema, strictly."""

from kube_contract.verify import assert_valid_kubernetes, written_manifests

from conftest import NAMESPACE


def test_stored_objects_are_valid_kubernetes_1_36(contract_objects, tmp_path):
    assert {o["kind"] for o in contract_objects} == {"Namespace", "Secret", "ConfigMap", "Job"}
    assert_valid_kubernetes({f"{o['kind']}-{o['metadata']['name']}": o for o in contract_objects}, tmp_path)


def test_written_manifests_are_valid_kubernetes_1_36(host, tmp_path):
    documents = written_manifests(host, NAMESPACE)
    assert len(documents) == 5
    assert_valid_kubernetes(documents, tmp_path)
