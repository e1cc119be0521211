"""The command line as a shell user meets it: pipes closed early, internal errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PRIMAGE = Path(sys.executable).parent / "primage"


@pytest.mark.parametrize("argv", [["list"], ["list", "--json"], ["check", "tosca-types", "--json"]], ids=" ".join)
def test_a_reader_that_leaves_early_is_no_error(argv):
    """`primage list | head`: the reader closes the pipe before primage has written everything."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that is already gone: every write to the pipe fails
    try:
        completed = subprocess.run(
            [str(PRIMAGE), *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False
        )
    finally:
        os.close(write_end)
    assert completed.returncode == 141  # as a shell reports a command ended by SIGPIPE
    assert "internal error" not in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "BrokenPipeError" not in completed.stderr


def test_a_closed_pipe_after_the_output_is_complete_changes_nothing():
    completed = subprocess.run(
        ["sh", "-c", f"{PRIMAGE} list | head -n 1"], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0
    assert completed.stdout.startswith("piece")
    assert completed.stderr == ""
