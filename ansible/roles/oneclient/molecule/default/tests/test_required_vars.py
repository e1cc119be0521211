"""A run without oneclient_token (or with a malformed one) fails at the start, names the
variable, changes nothing, and never prints the value. Both runs go at once (check-required.yml)."""

import json
import os
import subprocess

import pytest

from conftest import ENV_FILE, SCENARIO

MALFORMED = "not a token\nONECLIENT_INSECURE=1"


def _start(extra_vars: dict | None = None) -> subprocess.Popen:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    command = ["ansible-playbook", "-i", inventory, str(SCENARIO / "check-required.yml")]
    if extra_vars is not None:
        command += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.fixture(scope="module")
def runs(host) -> dict:
    before = host.file(ENV_FILE).content_string
    processes = {"missing": _start(), "malformed": _start({"oneclient_token": MALFORMED})}
    results = {}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=180)
        results[name] = (process.returncode, output)
    results["env_file_unchanged"] = host.file(ENV_FILE).content_string == before
    return results


def _recap_line(output: str) -> str:
    lines = [line for line in output.splitlines() if " : ok=" in line]
    assert lines, output
    return lines[-1]


def test_missing_token_fails_at_start_naming_it(runs):
    returncode, output = runs["missing"]
    assert returncode != 0
    assert "missing required arguments: oneclient_token" in output
    recap = _recap_line(output)
    assert "ok=0" in recap  # nothing ran before the argument validation failed
    assert "changed=0" in recap
    assert "failed=1" in recap


def test_malformed_token_fails_without_showing_it(runs):
    returncode, output = runs["malformed"]
    assert returncode != 0
    assert "oneclient_token must be a non-empty Onedata access token" in output
    assert "not a token" not in output
    recap = _recap_line(output)
    assert "changed=0" in recap
    assert "failed=1" in recap


def test_failed_runs_left_the_host_alone(runs):
    assert runs["env_file_unchanged"]
