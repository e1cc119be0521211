"""Verifier fixtures: the test cluster the role ran against (tests/support/cluster_verify.py)."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))

from cluster_verify import Kube, require_cluster_run

NAMESPACE = "htc-batch"


@pytest.fixture(scope="session")
def run_env() -> dict[str, str]:
    return require_cluster_run()


@pytest.fixture(scope="session")
def kube(run_env) -> Kube:
    return Kube()


@pytest.fixture(scope="session")
def space(run_env) -> Path:
    return Path(run_env["PRIMAGE_CLUSTER_SPACE"])


@pytest.fixture(scope="session")
def sample(space) -> dict:
    """What `primage-segment sample` wrote: each case and its true lesion volume."""
    return json.loads((space / "sample.json").read_text())


@pytest.fixture(scope="module")
def facts(host) -> dict:
    return json.loads(host.file("/root/htc_batch-facts.json").content_string)


@pytest.fixture(scope="module")
def job(kube, facts) -> dict:
    return kube.get("job", facts["job"], NAMESPACE)


@pytest.fixture(scope="session")
def objects(kube, run_env) -> list[dict]:
    return kube.application_objects(NAMESPACE)
