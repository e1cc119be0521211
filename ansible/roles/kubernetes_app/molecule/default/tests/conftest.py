"""Verifier fixtures: the contract server's stored objects and request log (tests/support/kube_contract)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))

from kube_contract.verify import contract_objects, contract_requests  # noqa: F401

NAMESPACE = "demo"


@pytest.fixture(scope="module")
def facts(host):
    return json.loads(host.file("/root/kubernetes_app-facts.json").content_string)
