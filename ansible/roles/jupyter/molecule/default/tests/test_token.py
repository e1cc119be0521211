"""The notebook and Onedata tokens: root-only on the front end, in their Secrets, nowhere else."""

import base64
import os
import re

from kube_contract.verify import requests_mentioning, scan_secrets, secret_value

from conftest import NAMESPACE, TOKEN_FILE

ONEDATA_TOKEN = os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]


def _notebook_token(host):
    return host.file(TOKEN_FILE).content_string


def test_token_file_is_root_only(host):
    token_file = host.file(TOKEN_FILE)
    assert token_file.mode == 0o600
    assert token_file.user == "root"
    assert token_file.group == "root"


def test_generated_token_is_long_and_random_looking(host):
    assert re.fullmatch(r"[0-9a-f]{48}", _notebook_token(host))


def test_secrets_hold_the_tokens(host, contract_objects):
    assert secret_value(contract_objects, NAMESPACE, "notebook-token", "token") == _notebook_token(host)
    assert secret_value(contract_objects, NAMESPACE, "onedata-token", "token") == ONEDATA_TOKEN
    stored = next(o for o in contract_objects if o["metadata"]["name"] == "notebook-token")
    assert base64.b64decode(stored["data"]["token"], validate=True)


def test_tokens_travel_only_in_their_secret_request_bodies(host, contract_requests):
    for value, secret in ((_notebook_token(host), "notebook-token"), (ONEDATA_TOKEN, "onedata-token")):
        carriers = requests_mentioning(contract_requests, value)
        assert carriers, f"no request carried {secret}"
        for request in carriers:
            assert request["method"] == "PATCH"
            assert request["path"] == f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret}"


def test_no_process_or_world_readable_file_holds_a_token(host):
    report = scan_secrets(host)
    assert report["values_checked"] >= 4
    assert report["processes"] == []
    assert report["world_readable_files"] == []


def test_inspection_copies_of_secrets_are_redacted_and_root_only(host):
    for name in ("10-secret-onedata-token.yaml", "12-secret-notebook-token.yaml"):
        copy = host.file(f"/etc/primage/apps/jupyter/{name}")
        assert copy.mode == 0o600
        assert _notebook_token(host) not in copy.content_string
        assert ONEDATA_TOKEN not in copy.content_string
