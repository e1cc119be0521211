"""Shared test helpers: the repository root and an in-process `primage` runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from primage import cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
UNIT = ROOT / "tests" / "unit"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _unit_tests_see_no_test_cluster(request, monkeypatch):
    """Unit tests never reach the test cluster, even while one is up on this host: its server-side
    dry runs are the cluster tests' (tests/cluster), and the Molecule scenarios that own the cluster
    while they run would otherwise meet the dry runs' scratch namespaces. So the unit lane can run
    beside the Molecule one (tox.ini)."""
    if UNIT in request.node.path.parents:
        from primage import cluster

        monkeypatch.setattr(cluster, "environment", lambda layout=None: {})


@pytest.fixture
def primage(capsys):
    """Run the command line in-process: primage("check", "x") -> Run(code, out, err)."""

    def run(*argv: str) -> Run:
        code = cli.main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A copy of the repository's pieces that a test may add files to (templates, image folders),
    made the root primage works on, with a cache of its own."""
    import shutil

    from primage import paths, release

    copy = tmp_path / "repo"
    for name in ("tosca", "radl", "ansible", "containers"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("molecule", ".cache"))
    for name in ("pyproject.toml", ".yamllint", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    monkeypatch.setenv("PRIMAGE_ROOT", str(copy))
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path / "cache"))
    paths.root.cache_clear()
    release.current.cache_clear()
    yield copy
    paths.root.cache_clear()
    release.current.cache_clear()
