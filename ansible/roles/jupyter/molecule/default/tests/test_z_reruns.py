"""Runs of the role beyond converge: a missing Onedata token, and a notebook token given as a variable.

Named to run last (pytest runs files in alphabetical order): these runs change the deployment.
"""

import os

from kube_contract.verify import one, request_log, run_playbook, secret_value, stored_objects

from conftest import NAMESPACE, TOKEN_FILE

GIVEN_TOKEN = "given-notebook-token-for-tests-3f9a"  # noqa: S105 - test value


def test_missing_token_fails_at_the_start_naming_the_variable(host):
    before = len(request_log(host))
    run = run_playbook("missing_token.yml")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "missing required arguments: jupyter_onedata_token" in output, output[-3000:]
    assert "Install the pinned Kubernetes Python client" not in output
    assert len(request_log(host)) == before


def test_given_token_replaces_the_generated_one_and_restarts_the_notebook(host):
    before = stored_objects(host)
    old_sts = one(before, "StatefulSet", NAMESPACE, "jupyter")
    os.environ["PRIMAGE_TEST_NOTEBOOK_TOKEN"] = GIVEN_TOKEN
    try:
        run = run_playbook("converge.yml", "-v")
    finally:
        del os.environ["PRIMAGE_TEST_NOTEBOOK_TOKEN"]
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert GIVEN_TOKEN not in output
    assert host.file(TOKEN_FILE).content_string == GIVEN_TOKEN
    assert host.file(TOKEN_FILE).mode == 0o600
    after = stored_objects(host)
    assert secret_value(after, NAMESPACE, "notebook-token", "token") == GIVEN_TOKEN
    new_sts = one(after, "StatefulSet", NAMESPACE, "jupyter")
    annotation = "primage.eu/secret-versions"
    assert (
        new_sts["spec"]["template"]["metadata"]["annotations"][annotation]
        != old_sts["spec"]["template"]["metadata"]["annotations"][annotation]
    )
    assert new_sts["metadata"]["generation"] == old_sts["metadata"]["generation"] + 1
    assert host.file("/etc/primage/apps/jupyter/notebook-url").content_string == "http://front.primage.test:30888/\n"
