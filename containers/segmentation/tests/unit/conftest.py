"""Shared helpers of the unit tests (run inside the built image: `python3 -m pytest /opt/primage/tests/unit`)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import TASK_VARIABLES

from primage_segmentation import cli
from primage_segmentation.phantoms import PhantomSpec, make_phantom, nifti_bytes


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def clean_task_environment(monkeypatch):
    """No test sees the task variables of the shell that runs pytest."""
    for name in TASK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """primage-segment in-process: run_cli("run", path, env={...}) -> Run(code, out, err)."""

    def run(*argv, env: dict | None = None) -> Run:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, str(value))
        handler = signal.getsignal(signal.SIGTERM)
        try:
            code = cli.main([str(a) for a in argv])
        finally:
            signal.signal(signal.SIGTERM, handler)  # main() installs its own
        captured = capsys.readouterr()
        for name in env or {}:
            monkeypatch.delenv(name, raising=False)
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def small_phantom():
    """A quick phantom (lesion, distractor, bias, noise, anisotropic voxels)."""
    return make_phantom(PhantomSpec(shape=(64, 64, 24), spacing=(1.0, 1.0, 2.5), lesion_radius_mm=11.0, seed=3))


@pytest.fixture
def nifti_file(tmp_path, small_phantom) -> Path:
    path = tmp_path / "inputs" / "case.nii.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(nifti_bytes(small_phantom.image, small_phantom.affine))
    return path
