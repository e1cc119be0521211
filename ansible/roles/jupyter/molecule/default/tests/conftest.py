"""Verifier fixtures: the test cluster the role ran against (tests/support/cluster_verify.py)."""

import os
import ssl
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.environ["PRIMAGE_ROOT"], "tests", "support"))

from cluster_verify import Kube, require_cluster_run

NAMESPACE = "jupyter"
TOKEN_FILE = "/etc/primage/apps/jupyter/token"  # noqa: S105 - a path
TLS_DIR = "/etc/primage/apps/jupyter/tls"  # the role's self-signed CA and certificate on the front end


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
def url(run_env) -> str:
    """The notebook's NodePort on the node (this host's bridge address), HTTPS only."""
    return f"https://{run_env['PRIMAGE_CLUSTER_NODE_IP']}:30888"


@pytest.fixture(scope="module")
def trusted(host) -> ssl.SSLContext:
    """Trusts the CA the role made on the front end, and nothing else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=host.file(f"{TLS_DIR}/ca.crt").content_string)
    return context


def notebook_token(host) -> str:
    return host.file(TOKEN_FILE).content_string


@pytest.fixture(scope="session")
def objects(kube, run_env) -> list[dict]:
    return kube.application_objects(NAMESPACE)
