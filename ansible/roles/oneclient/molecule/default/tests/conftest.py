"""Shared fixtures for the oneclient scenario's testinfra tests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parent.parent
UNIT = "oneclient-default.service"
ENV_FILE = "/etc/oneclient/default.env"


@pytest.fixture(scope="session")
def test_vars() -> dict:
    return yaml.safe_load((SCENARIO / "vars" / "test-vars.yml").read_text())


@pytest.fixture(scope="session")
def token(test_vars) -> str:
    return test_vars["oneclient_test_token"]


def mount_entry(host, mount_point: str) -> list[str] | None:
    """The /proc/mounts fields of mount_point, or None when it is not mounted."""
    for line in host.file("/proc/mounts").content_string.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == mount_point:
            return fields
    return None


def wait_for(check, timeout: float = 30.0, interval: float = 0.5):
    """Call check() until it returns a truthy value or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show --property MainPID --value {UNIT}").strip())
