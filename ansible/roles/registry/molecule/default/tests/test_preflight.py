"""Bad settings fail at the start of the role, naming the variable, and leak no password."""

import os
import subprocess
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1]


def test_preflight_failures_name_the_variable():
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "preflight.yml")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=os.environ.copy(),
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "preflight-leak-canary" not in output
