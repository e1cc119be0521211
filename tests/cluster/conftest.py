"""The real test cluster: built binaries (`primage cluster build`), root, the local Docker engine.

Nothing here skips: without the binaries the tests fail and say how to build them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from primage import engine
from primage.cluster import components
from primage.errors import PrimageError

# Kube and the other helpers shared with the Molecule verifiers that run on the cluster.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

IMAGE_DIR = Path(__file__).parent / "image"
IMAGE_PREFIX = "primage-cluster-test"


@pytest.fixture(scope="session")
def built():
    """Fail (never skip) when the cluster cannot run here, naming what is missing."""
    if os.geteuid() != 0:
        pytest.fail("the cluster tests need root (a kubelet, containerd and iptables)")
    try:
        components.require_built()
    except PrimageError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def test_image(built) -> str:
    """The workloads' image, built FROM the bootstrapped debian:trixie-slim, tagged by content."""
    engine.ensure_docker()
    engine.ensure_base_images(["debian:trixie-slim"])
    return engine.build_folder_image(IMAGE_DIR, IMAGE_PREFIX)
