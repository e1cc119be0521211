"""Helpers shared by the unit tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

TASK_VARIABLES = ("PRIMAGE_INPUT_LIST", "JOB_COMPLETION_INDEX", "PRIMAGE_INPUT_ROOT", "PRIMAGE_OUTPUT_DIR")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def temporaries(folder: Path) -> list[Path]:
    """Temporary files of atomic writes left anywhere under `folder`."""
    return [p for p in folder.rglob(".*") if ".tmp-" in p.name]


def environment_without_task_variables() -> dict:
    return {k: v for k, v in os.environ.items() if k not in TASK_VARIABLES}
