"""Verifier fixtures: the test cluster the role ran against (tests/support/cluster_verify.py)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))

from cluster_verify import Kube, require_cluster_run

NAMESPACE = "demo"


@pytest.fixture(scope="session")
def kube() -> Kube:
    require_cluster_run()
    return Kube()


@pytest.fixture(scope="session")
def objects(kube) -> list[dict]:
    return kube.application_objects(NAMESPACE)


@pytest.fixture(scope="module")
def facts(host):
    return json.loads(host.file("/root/kubernetes_app-facts.json").content_string)
