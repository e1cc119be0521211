"""The options of `primage infra`, refused by the command line before any IM is asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PRIMAGE = str(Path(sys.executable).parent / "primage")


def test_a_worker_count_below_one_is_a_usage_error():
    result = subprocess.run(
        [PRIMAGE, "infra", "add", "some-id", "--workers", "0"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "primage: error: argument --workers: expected a whole number of at least 1, got '0' (see 'primage --help')"
    )
