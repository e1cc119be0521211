"""The notebook and Onedata tokens: root-only on the front end, in their Secret, nowhere else."""

import base64
import os
import re

from cluster_verify import scan_secrets, without_secrets

from conftest import NAMESPACE, TLS_DIR, TOKEN_FILE, notebook_token

ONEDATA_TOKEN = os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]


def test_token_file_is_root_only(host):
    token_file = host.file(TOKEN_FILE)
    assert token_file.mode == 0o600
    assert (token_file.user, token_file.group) == ("root", "root")


def test_generated_token_is_long_and_random_looking(host):
    assert re.fullmatch(r"[0-9a-f]{48}", notebook_token(host))


def test_the_secret_holds_the_notebook_token(kube, host):
    assert kube.secret_value(NAMESPACE, "notebook-token", "token") == notebook_token(host)


def test_the_pod_restarts_when_its_token_changes(kube):
    sts = kube.get("statefulset", "jupyter", NAMESPACE)
    annotation = sts["spec"]["template"]["metadata"]["annotations"]["primage.eu/secret-versions"]
    stored = kube.get("secret", "notebook-token", NAMESPACE)["metadata"]["resourceVersion"]
    tls = kube.get("secret", "notebook-tls", NAMESPACE)["metadata"]["resourceVersion"]
    assert annotation == f"notebook-tls={tls},notebook-token={stored}"


def test_no_other_object_holds_a_token_and_node_mode_keeps_onedatas_out(objects, host):
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Secret") == ["notebook-tls", "notebook-token"]
    text = without_secrets(objects)
    assert notebook_token(host) not in text
    assert ONEDATA_TOKEN not in text + str(objects)


def test_no_process_or_world_readable_file_of_the_front_end_holds_a_token_or_key(host):
    keys = [host.file(f"{TLS_DIR}/{name}").content_string.strip() for name in ("ca.key", "notebook.key")]
    report = scan_secrets(host.backend.name, [notebook_token(host), ONEDATA_TOKEN, *keys])
    assert report["values_checked"] == 8
    assert report["processes"] == []
    assert report["world_readable_files"] == []


def test_inspection_copies_of_secrets_are_redacted_and_root_only(host):
    copy = host.file("/etc/primage/apps/jupyter/secret-notebook-token.yaml")
    assert copy.mode == 0o600
    assert notebook_token(host) not in copy.content_string
    assert "UkVEQUNURUQ=" in copy.content_string
    tls_copy = host.file("/etc/primage/apps/jupyter/secret-notebook-tls.yaml")
    assert tls_copy.mode == 0o600
    key = host.file(f"{TLS_DIR}/notebook.key").content_string
    assert "PRIVATE KEY" not in tls_copy.content_string
    assert base64.b64encode(key.encode()).decode() not in tls_copy.content_string
