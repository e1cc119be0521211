"""Runs of the role beyond converge, on the real cluster: a missing Onedata token, and a notebook
token given as a variable (the notebook restarts with it; the old one is refused).

Named to run last (pytest runs files in alphabetical order): these runs change the deployment.
"""

from cluster_verify import http, run_playbook

from conftest import NAMESPACE, TOKEN_FILE, notebook_token

GIVEN_TOKEN = "given-notebook-token-for-tests-3f9a"  # noqa: S105 - test value


def _state(kube) -> list[tuple]:
    namespaces = [(n["metadata"]["name"], n["metadata"]["resourceVersion"]) for n in kube.items("namespaces", "")]
    objects = [
        (o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"])
        for o in kube.application_objects(NAMESPACE)
    ]
    return sorted(namespaces) + sorted(objects)


def test_missing_token_fails_at_the_start_naming_the_variable(kube):
    before = _state(kube)
    run = run_playbook("missing_token.yml")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "jupyter_onedata_mode is pod: the notebook mounts the space itself and needs" in output, output[-3000:]
    assert "Install the pinned Kubernetes Python client" not in output
    assert _state(kube) == before


def test_a_given_token_replaces_the_generated_one_and_restarts_the_notebook(kube, host, url, trusted):
    old_token = notebook_token(host)
    old_sts = kube.get("statefulset", "jupyter", NAMESPACE)
    old_pod = kube.get("pod", "jupyter-0", NAMESPACE)["metadata"]["uid"]
    run = run_playbook("converge.yml", "-v", env={"PRIMAGE_TEST_NOTEBOOK_TOKEN": GIVEN_TOKEN})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert GIVEN_TOKEN not in output
    assert host.file(TOKEN_FILE).content_string == GIVEN_TOKEN
    assert host.file(TOKEN_FILE).mode == 0o600
    assert kube.secret_value(NAMESPACE, "notebook-token", "token") == GIVEN_TOKEN
    new_sts = kube.get("statefulset", "jupyter", NAMESPACE)
    assert new_sts["metadata"]["generation"] == old_sts["metadata"]["generation"] + 1
    assert kube.get("pod", "jupyter-0", NAMESPACE)["metadata"]["uid"] != old_pod
    assert http(f"{url}/api/status", token=GIVEN_TOKEN, context=trusted)[0] == 200
    assert http(f"{url}/api/status", token=old_token, context=trusted)[0] == 403
    assert host.file("/etc/primage/apps/jupyter/notebook-url").content_string.endswith(":30888/\n")
