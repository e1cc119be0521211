"""The manifests the role wrote for inspection are what the cluster holds (Secrets: names only)."""

from cluster_verify import contained, written_manifests

from conftest import NAMESPACE


def test_every_applied_object_has_its_inspection_copy(host, objects):
    documents = written_manifests(host, NAMESPACE)
    assert sorted(documents) == sorted(f"{o['kind'].lower()}-{o['metadata']['name']}.yaml" for o in objects)


def test_the_copies_hold_what_the_api_server_stored(host, objects):
    documents = written_manifests(host, NAMESPACE)
    for stored in objects:
        copy = documents[f"{stored['kind'].lower()}-{stored['metadata']['name']}.yaml"]
        if stored["kind"] == "Secret":
            assert sorted(copy["data"]) == sorted(stored["data"])  # values redacted in the copy
            continue
        assert contained(copy, stored), copy["metadata"]["name"]
