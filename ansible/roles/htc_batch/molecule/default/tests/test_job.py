"""The Indexed Job on the real cluster: the segmentation image over every input of the space."""

import json
import os
import re
from datetime import datetime

from conftest import NAMESPACE


def _container(job):
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _pods(kube, job):
    return kube.items("pods", NAMESPACE, "-l", f"batch.kubernetes.io/job-name={job['metadata']['name']}")


def test_inputs_are_the_sample_volumes_and_series_folder_in_order(facts, sample):
    # case-001.nii.gz, case-002.nii and the DICOM series folder series-003; notes.txt is skipped.
    assert facts["inputs"] == sorted(case["input"] for case in sample["cases"])
    assert "inputs/series-003" in facts["inputs"]


def test_the_configmap_lists_them_for_the_tasks(kube, facts):
    (configmap,) = kube.items("configmaps", NAMESPACE, "-l", "app.kubernetes.io/name=htc-batch")
    assert re.fullmatch(r"htc-batch-inputs-[0-9a-f]{10}", configmap["metadata"]["name"])
    assert configmap["data"]["inputs.txt"].splitlines() == facts["inputs"]
    assert configmap["immutable"] is True


def test_the_job_completed_every_task_once(kube, job, facts):
    assert re.fullmatch(r"htc-batch-[0-9a-f]{10}", job["metadata"]["name"])
    conditions = {c["type"]: c["status"] for c in job["status"].get("conditions", [])}
    assert conditions.get("Complete") == "True", json.dumps(job["status"])
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["status"]["succeeded"] == len(facts["inputs"]) == 3
    assert job["status"]["completedIndexes"] == "0-2"
    pods = _pods(kube, job)
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods) == [
        "0",
        "1",
        "2",
    ]
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}


def test_outputs_land_where_the_role_says_with_the_lesions_found(space, sample):
    """PRIMAGE_OUTPUT_DIR/<input without .nii/.nii.gz>/, a volume close to the phantom's known one."""
    for case in sample["cases"]:
        stem = re.sub(r"\.nii(\.gz)?$", "", case["input"])
        folder = space / "outputs" / stem
        assert sorted(p.name for p in folder.iterdir()) == [
            "_SUCCESS",
            "mask.nii.gz",
            "overlay.png",
            "segmentation.json",
        ]
        record = json.loads((folder / "segmentation.json").read_text())
        assert record["input"]["path"] == case["input"]
        assert record["lesion_found"] is True
        assert 0.8 <= record["volume_ml"] / case["truth_volume_ml"] <= 1.25, (case["input"], record["volume_ml"])
        assert (folder / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (folder / "mask.nii.gz").stat().st_uid == 1000  # written by the task's user
    assert json.loads((space / "outputs/inputs/series-003/segmentation.json").read_text())["input"]["format"] == "dicom"


def test_the_front_end_sees_the_results_at_its_mount_point(host, space):
    """The same folder, at the same path, on the front end and on the node the tasks ran on."""
    marker = host.file(f"{space}/outputs/inputs/case-001/_SUCCESS")
    assert marker.exists
    assert json.loads(marker.content_string)["input"] == "inputs/case-001.nii.gz"


def test_a_rerun_with_the_same_inputs_started_nothing_new(kube, job, space):
    """Idempotence ran the role again: the same Job, no new pod, no result written after the Job completed."""
    assert len(_pods(kube, job)) == 3
    assert len(kube.items("jobs", NAMESPACE)) == 1
    assert job["metadata"]["generation"] == 1
    completed = datetime.fromisoformat(job["status"]["completionTime"])
    markers = [datetime.fromisoformat(json.loads(p.read_text())["finished"]) for p in space.glob("outputs/**/_SUCCESS")]
    assert len(markers) == 3
    assert max(markers) <= completed


def test_the_tasks_run_as_the_images_user_with_a_read_only_root(job):
    pod = job["spec"]["template"]["spec"]
    container = _container(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (1000, 1000)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tmp"] == "/tmp"


def test_node_mode_sees_the_space_through_the_nodes_folder(job, space):
    pod = job["spec"]["template"]["spec"]
    container = _container(job)
    volume = next(v for v in pod["volumes"] if v["name"] == "onedata-space")
    assert volume["hostPath"] == {"path": str(space), "type": "Directory"}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "onedata-space")
    assert mount["mountPath"] == "/mnt/onedata"
    assert mount["mountPropagation"] == "HostToContainer"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PRIMAGE_INPUT_ROOT"] == "/mnt/onedata"
    assert env["PRIMAGE_OUTPUT_DIR"] == "/mnt/onedata/outputs"
    assert env["PRIMAGE_TEST_MARKER"] == "from-the-role"
    assert not [name for name in env if name.startswith("ONECLIENT_")]


def test_a_bad_input_fails_its_index_without_retry_rule(job):
    (rule,) = job["spec"]["podFailurePolicy"]["rules"]
    assert rule == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "task", "operator": "In", "values": [64, 65, 66]},
    }
    assert job["spec"]["backoffLimitPerIndex"] == 2


def test_the_image_is_the_loaded_one_with_the_pull_secret(job, run_env):
    pod = job["spec"]["template"]["spec"]
    assert _container(job)["image"] == os.environ["PRIMAGE_IMAGE_SEGMENTATION"]
    assert _container(job)["imagePullPolicy"] == "IfNotPresent"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_every_object_is_owned_by_the_role_through_server_side_apply(objects):
    assert {o["kind"] for o in objects} == {"Namespace", "Secret", "ConfigMap", "Job"}
    for obj in objects:
        applied = [m for m in obj["metadata"]["managedFields"] if m["manager"] == "primage-platform"]
        assert [m["operation"] for m in applied] == ["Apply"], obj["metadata"]["name"]
        assert "kubectl.kubernetes.io/last-applied-configuration" not in (obj["metadata"].get("annotations") or {})


def test_manifests_are_written_for_inspection(host, job):
    rendered = host.file(f"/etc/primage/apps/htc-batch/job-{job['metadata']['name']}.yaml")
    assert rendered.mode == 0o644
    assert "completionMode: Indexed" in rendered.content_string
