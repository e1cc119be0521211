"""Where the registry password ends up in node mode: only in its Secret (pod mode: test_z_reruns.py)."""

import json
import os

from cluster_verify import scan_secrets, without_secrets

from conftest import NAMESPACE

PASSWORD = os.environ["PRIMAGE_TEST_REGISTRY_PASSWORD"]
TOKEN = os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]


def test_the_registry_secret_holds_the_credentials(kube):
    config = json.loads(kube.secret_value(NAMESPACE, "registry-credentials", ".dockerconfigjson"))
    assert list(config["auths"]) == ["docker.io"]  # the loaded image has no registry part
    assert config["auths"]["docker.io"]["username"] == "primage-ci"
    assert config["auths"]["docker.io"]["password"] == PASSWORD


def test_node_mode_keeps_the_onedata_token_out_of_the_cluster(objects):
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == ["registry-credentials"]
    assert TOKEN not in json.dumps(objects)


def test_no_other_object_holds_the_password(objects):
    assert PASSWORD not in without_secrets(objects)


def test_no_process_or_world_readable_file_of_the_front_end_holds_it(host):
    instance = host.backend.name
    report = scan_secrets(instance, [PASSWORD])
    assert report["values_checked"] == 2
    assert report["processes"] == []
    assert report["world_readable_files"] == []


def test_inspection_copies_of_secrets_are_redacted_and_root_only(host):
    copy = host.file("/etc/primage/apps/htc-batch/secret-registry-credentials.yaml")
    assert copy.mode == 0o600
    assert copy.user == "root"
    assert "UkVEQUNURUQ=" in copy.content_string
    assert PASSWORD not in copy.content_string
