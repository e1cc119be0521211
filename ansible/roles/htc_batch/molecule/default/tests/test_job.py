"""The input list and the Indexed Job the role created, as the API server stores them."""

import re

from kube_contract.verify import one, select

from conftest import NAMESPACE

EXPECTED_INPUTS = ["inputs/case-001.nii.gz", "inputs/case-002.nii.gz", "inputs/case-010.nii.gz"]


def _job(objects):
    return one(objects, "Job", NAMESPACE)


def _container(objects):
    containers = _job(objects)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_namespace_carries_the_standard_labels(contract_objects):
    labels = one(contract_objects, "Namespace", name=NAMESPACE)["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "htc-batch"
    assert labels["app.kubernetes.io/part-of"] == "primage"
    assert labels["app.kubernetes.io/managed-by"] == "primage.platform"


def test_configmap_lists_the_matching_files_in_order(contract_objects):
    configmap = one(contract_objects, "ConfigMap", NAMESPACE)
    assert re.fullmatch(r"htc-batch-inputs-[0-9a-f]{10}", configmap["metadata"]["name"])
    assert configmap["data"]["inputs.txt"].splitlines() == EXPECTED_INPUTS
    assert configmap["data"]["count"] == "3"
    assert configmap["immutable"] is True


def test_job_runs_one_indexed_task_per_file(contract_objects):
    job = _job(contract_objects)
    spec = job["spec"]
    assert re.fullmatch(r"htc-batch-[0-9a-f]{10}", job["metadata"]["name"])
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == len(EXPECTED_INPUTS)
    assert spec["parallelism"] == 2
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["labels"]["app.kubernetes.io/part-of"] == "primage"


def test_job_reads_its_list_from_the_configmap(contract_objects):
    configmap = one(contract_objects, "ConfigMap", NAMESPACE)["metadata"]["name"]
    pod = _job(contract_objects)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["input-list"]["configMap"]["name"] == configmap
    env = {e["name"]: e for e in _container(contract_objects)["env"]}
    mounts = {m["name"]: m for m in _container(contract_objects)["volumeMounts"]}
    assert env["PRIMAGE_INPUT_LIST"]["value"] == mounts["input-list"]["mountPath"] + "/inputs.txt"
    assert env["PRIMAGE_INPUT_ROOT"]["value"] == "/mnt/onedata"
    assert env["PRIMAGE_OUTPUT_DIR"]["value"] == "/mnt/onedata/outputs"
    assert env["PRIMAGE_MODEL"]["value"] == "nnunet-3d"


def test_pods_mount_onedata_with_fuse_and_sys_admin_only(contract_objects):
    pod = _job(contract_objects)["spec"]["template"]["spec"]
    container = _container(contract_objects)
    fuse = next(v for v in pod["volumes"] if v["name"] == "fuse")
    assert fuse["hostPath"] == {"path": "/dev/fuse", "type": "CharDevice"}
    assert {"name": "fuse", "mountPath": "/dev/fuse"} in container["volumeMounts"]
    context = container["securityContext"]
    assert context["capabilities"] == {"add": ["SYS_ADMIN"]}
    assert context.get("privileged") is False
    assert "privileged" not in (pod.get("securityContext") or {})
    env = {e["name"]: e for e in container["env"]}
    assert env["ONECLIENT_PROVIDER_HOST"]["value"] == "provider.onedata.test"
    assert env["ONECLIENT_MOUNT_POINT"]["value"] == "/mnt/onedata"
    token = env["ONECLIENT_ACCESS_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"] == {"secretKeyRef": {"name": "onedata-token", "key": "token"}}
    assert one(contract_objects, "Secret", NAMESPACE, "onedata-token")


def test_image_is_pinned_and_pulled_with_the_registry_secret(contract_objects):
    pod = _job(contract_objects)["spec"]["template"]["spec"]
    image = _container(contract_objects)["image"]
    assert image == "registry.primage.test:5000/primage/segmentation:1.0.0"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    secret = one(contract_objects, "Secret", NAMESPACE, "registry-credentials")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"


def test_every_object_is_owned_by_the_role_through_server_side_apply(contract_objects, contract_requests):
    for obj in select(contract_objects, "Namespace") + [o for o in contract_objects if o["metadata"].get("namespace")]:
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]}
        assert managers == {("primage-platform", "Apply")}, obj["metadata"]["name"]
    writes = [r for r in contract_requests if r["method"] in ("POST", "PUT", "PATCH")]
    assert writes
    assert {r["content_type"] for r in writes} == {"application/apply-patch+yaml"}
    assert {r["query"].get("fieldManager") for r in writes} == {"primage-platform"}


def test_manifests_are_written_for_inspection(host, contract_objects):
    job = _job(contract_objects)["metadata"]["name"]
    folder = host.file("/etc/primage/apps/htc-batch")
    assert folder.is_directory
    rendered = host.file(f"/etc/primage/apps/htc-batch/30-job-{job}.yaml")
    assert rendered.mode == 0o644
    assert "completionMode: Indexed" in rendered.content_string


def test_output_folder_exists_in_the_space(host):
    assert host.file("/mnt/onedata/outputs").is_directory
