"""Fixtures of the kubernetes scenario: the two nodes, reached through Docker directly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import testinfra
import yaml

PLATFORM = os.environ.get("MOLECULE_PLATFORM", "debian-bookworm")
ROLE_DIR = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def control_plane():
    return testinfra.get_host(f"docker://kubernetes-cp-{PLATFORM}")


@pytest.fixture(scope="session")
def worker():
    return testinfra.get_host(f"docker://kubernetes-worker-{PLATFORM}")


@pytest.fixture(scope="session", params=["control_plane", "worker"])
def node(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def defaults() -> dict:
    """The role's defaults: the pinned values a converge without overrides uses."""
    return yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def scenario_vars() -> dict:
    """The variables the scenario gives every node (the site's mirror settings), from molecule.yml."""
    scenario = yaml.safe_load((ROLE_DIR / "molecule" / "default" / "molecule.yml").read_text(encoding="utf-8"))
    return scenario["provisioner"]["inventory"]["group_vars"]["all"]


@pytest.fixture(scope="session")
def init_config(control_plane) -> dict[str, dict]:
    """kind -> document of the control plane's rendered kubeadm init configuration."""
    text = control_plane.file("/etc/kubernetes/kubeadm/kubeadm-init.yaml").content_string
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text) if doc}


@pytest.fixture(scope="session")
def join_config(worker) -> dict:
    """The worker's rendered JoinConfiguration."""
    text = worker.file("/etc/kubernetes/kubeadm/kubeadm-join.yaml").content_string
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    assert [doc["kind"] for doc in docs] == ["JoinConfiguration"]
    return docs[0]
