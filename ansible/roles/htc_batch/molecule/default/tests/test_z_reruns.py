"""Runs of the role beyond converge, on the real cluster: refusals that change nothing, new inputs
(one good, one corrupt: the finished tasks skip, the new one runs, the bad one fails at once),
and pod mode's objects.

Named to run last (pytest runs files in alphabetical order); each test leaves the cluster and the
space as converge left them, so verify can run again.
"""

import json
import os
import re
import shutil
import tempfile
import time

import pytest
from cluster_verify import run_playbook, scan_secrets, start_playbook, write_file

from conftest import NAMESPACE

TOKEN = os.environ["PRIMAGE_TEST_ONEDATA_TOKEN"]
PASSWORD = os.environ["PRIMAGE_TEST_REGISTRY_PASSWORD"]


def _state(kube) -> list[tuple]:
    """Every namespace and every object of the application, by name and resourceVersion."""
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
    assert "Validating arguments against arg spec" in output
    assert "htc_batch_onedata_mode is pod: the pods mount the space themselves and need" in output, output[-3000:]
    assert "htc_batch_onedata_provider_host and htc_batch_onedata_token (not shown)" in output
    assert "Install the pinned Kubernetes Python client" not in output
    assert _state(kube) == before


def test_no_matching_file_fails_naming_folder_and_pattern(kube, space):
    before = _state(kube)
    run = run_playbook("converge.yml", "-e", '{"htc_batch_input_pattern": "*.dcm", "htc_batch_input_folders": false}')
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert f"No input file matches '*.dcm' in {space}/inputs" in output, output[-3000:]
    assert _state(kube) == before


def test_an_input_list_beyond_the_configmap_limit_fails_before_anything_is_applied(kube, space):
    # 4400 names of 237 characters: about 1.03 MiB of list, more than a ConfigMap's data may hold.
    names = [space / "inputs" / f"{'x' * 225}{n:05d}.nii.gz" for n in range(4400)]
    before = _state(kube)
    try:
        for name in names:
            name.touch()
        run = run_playbook("converge.yml")
    finally:
        for name in names:
            name.unlink(missing_ok=True)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "the input list of htc-batch has 4403 files" in output, output[-3000:]
    assert "more than a Kubernetes ConfigMap holds (its data are limited to 1 MiB, 1048576 bytes)" in output
    assert _state(kube) == before


@pytest.fixture
def new_inputs(kube, host, space, facts):
    """A copy of a sample volume and a corrupt one, added to the space; everything they made removed after."""
    facts_file = host.file("/root/htc_batch-facts.json").content_string
    added = {"good": space / "inputs/case-004.nii.gz", "bad": space / "inputs/case-005.nii.gz"}
    shutil.copy(space / "inputs/case-001.nii.gz", added["good"])
    added["bad"].write_bytes(b"\x1f\x8b this is no NIfTI volume")
    for path in added.values():
        os.chown(path, 1000, 1000)
    try:
        yield added
    finally:
        for path in added.values():
            path.unlink(missing_ok=True)
        shutil.rmtree(space / "outputs/inputs/case-004", ignore_errors=True)
        shutil.rmtree(space / "outputs/inputs/case-005", ignore_errors=True)
        for job in kube.items("jobs", NAMESPACE):
            if job["metadata"]["name"] != facts["job"]:
                kube.run("delete", "job", job["metadata"]["name"], "-n", NAMESPACE, "--cascade=foreground")
                configmap = job["metadata"]["annotations"]["primage.eu/input-list"]
                kube.run("delete", "configmap", configmap, "-n", NAMESPACE)
                host.run(f"rm -f /etc/primage/apps/{NAMESPACE}/job-{job['metadata']['name']}.yaml")
                host.run(f"rm -f /etc/primage/apps/{NAMESPACE}/configmap-{configmap}.yaml")
        write_file(host.backend.name, "/root/htc_batch-facts.json", facts_file)  # converge's, as it was


def test_new_inputs_make_a_new_job_that_redoes_only_what_is_missing(kube, space, facts, job, new_inputs):
    markers = {p: p.read_text() for p in space.glob("outputs/**/_SUCCESS")}
    run = run_playbook("converge.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    new = _new_job(kube, facts)
    assert new["spec"]["completions"] == 5
    assert kube.get("job", facts["job"], NAMESPACE)["metadata"]["resourceVersion"] == job["metadata"]["resourceVersion"]
    # The three finished inputs were skipped by their tasks (their markers untouched), the copy was done.
    assert {p: p.read_text() for p in markers} == markers
    assert json.loads((space / "outputs/inputs/case-004/_SUCCESS").read_text())["input"] == "inputs/case-004.nii.gz"
    # The corrupt input failed its index at once: one pod, exit code 65, no retry.
    order = sorted([*facts["inputs"], "inputs/case-004.nii.gz", "inputs/case-005.nii.gz"])
    bad_index = str(order.index("inputs/case-005.nii.gz"))
    assert new["status"]["failedIndexes"] == bad_index
    assert {c["type"]: c.get("reason") for c in new["status"]["conditions"] if c["status"] == "True"}[
        "Failed"
    ] == "FailedIndexes"
    pods = kube.items("pods", NAMESPACE, "-l", f"batch.kubernetes.io/job-name={new['metadata']['name']}")
    bad = [p for p in pods if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == bad_index]
    assert len(bad) == 1
    assert bad[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 65


def _new_job(kube, facts) -> dict:
    """The one Job besides converge's."""
    jobs = [j for j in kube.items("jobs", NAMESPACE) if j["metadata"]["name"] != facts["job"]]
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    return jobs[0]


def test_pod_mode_objects_are_accepted_by_the_api_server(kube, host):
    """The role in pod mode stores what pod mode needs (its pods run in tests/cluster/test_onedata_pod_mode.py)."""
    run = run_playbook("pod_mode.yml")
    try:
        assert run.returncode == 0, run.stdout[-3000:]
        assert TOKEN not in run.stdout + run.stderr
        namespace = "htc-batch-pod"
        assert kube.secret_value(namespace, "onedata-token", "token") == TOKEN
        (job,) = kube.items("jobs", namespace)
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == os.environ["PRIMAGE_IMAGE_SEGMENTATION"] + "-onedata"
        assert container["resources"]["limits"]["primage.eu/fuse"] == "1"
        assert container["resources"]["requests"]["primage.eu/fuse"] == "1"
        context = container["securityContext"]
        assert context["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]}
        assert context["privileged"] is False
        assert context["allowPrivilegeEscalation"] is False
        assert context["appArmorProfile"] == {"type": "Unconfined"}
        assert not [v for v in pod["volumes"] if "hostPath" in v]
        env = {e["name"]: e for e in container["env"]}
        assert env["ONECLIENT_ACCESS_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "onedata-token", "key": "token"}}
        assert TOKEN not in json.dumps(job)
        report = scan_secrets(host.backend.name, [TOKEN, PASSWORD])
        assert report["values_checked"] == 4
        assert report["processes"] == []
        assert report["world_readable_files"] == []
        copy = host.file("/etc/primage/apps/htc-batch-pod/secret-onedata-token.yaml")
        assert copy.mode == 0o600
        assert TOKEN not in copy.content_string
    finally:
        kube.run("delete", "namespace", "htc-batch-pod", "--ignore-not-found", "--wait=false")
        host.run("rm -rf /etc/primage/apps/htc-batch-pod")


WAITING = "Wait for a namespace still being deleted to be gone"  # the role's task
RELEASE = '{"metadata":{"finalizers":null}}'  # a merge patch that lets the held ConfigMap go


def _said(output) -> str:
    output.seek(0)
    return output.read()


def test_a_namespace_still_being_deleted_is_waited_for_then_made_again(kube, host):
    """An earlier run's namespace, deleted just before and still going (a finalizer holds it here):
    the role waits until it is gone, then creates it again and applies into it."""
    namespace = "htc-batch-going"  # its own: the test before leaves htc-batch-pod going
    hold = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hold", "namespace": namespace, "finalizers": ["primage.eu/test-hold"]},
    }
    host.run(f"rm -rf /etc/primage/apps/{namespace}")
    with tempfile.TemporaryFile("w+") as output:
        try:
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, hold)
            kube.run("delete", "namespace", namespace, "--wait=false")
            going = kube.get("namespace", namespace, "")
            assert going["status"]["phase"] == "Terminating", going["status"]
            role = start_playbook("pod_mode.yml", output, "-e", f"htc_batch_name={namespace}")
            # the role writes its manifests for inspection just before it applies them
            kube.wait_for(
                "the role to write its manifests",
                lambda: (
                    host.file(f"/etc/primage/apps/{namespace}/secret-onedata-token.yaml").exists
                    or role.poll() is not None
                ),
                timeout=300,
            )
            time.sleep(10)
            assert role.poll() is None, _said(output)[-3000:]  # waiting, not failed
            kube.run("patch", "configmap", "hold", "-n", namespace, "--type=merge", "-p", RELEASE)
            code = role.wait(timeout=300)
            said = _said(output)
            assert code == 0, said[-3000:]
            assert re.search(rf"RETRYING: \[[^]]+\]: {WAITING}", said), said[-3000:]
            made = kube.get("namespace", namespace, "")
            assert made["status"]["phase"] == "Active"
            assert made["metadata"]["uid"] != going["metadata"]["uid"]
            assert [j["metadata"]["name"] for j in kube.items("jobs", namespace)], "the Job is applied"
            assert TOKEN not in said
        finally:
            kube.run("patch", "configmap", "hold", "-n", namespace, "--type=merge", "-p", RELEASE, check=False)
            kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
            host.run(f"rm -rf /etc/primage/apps/{namespace}")
