"""What the kubernetes backend adds to the rendered pods: the site's pod overrides, and the pod that
mounts a Onedata space to list it (built from the application's own pod template, pod mode)."""

from __future__ import annotations

import copy

import pytest

from primage import workloads
from primage.apps import kube_space, listing, overrides
from primage.errors import PrimageError

TOKEN = "MDAx-unit-token"  # noqa: S105 - a stand-in, looked for where it must not be


def pod_mode_template() -> dict:
    values = {
        "htc_batch_name": "liver",
        "htc_batch_image": "primage/segmentation:0.1.0-g1a2b3c4",
        "htc_batch_onedata_mode": "pod",
        "htc_batch_onedata_provider_host": "provider.example.org",
        "htc_batch_inputs": ["inputs/*"],
    }
    rendered = workloads.render("htc_batch", values, {"htc_batch_onedata_token": TOKEN})
    (job,) = rendered.of_kind("Job")
    return copy.deepcopy(job.definition["spec"]["template"])


def write(tmp_path, text: str):
    path = tmp_path / "overrides.yaml"
    path.write_text(text)
    return path


def test_overrides_add_to_the_pod_and_its_container_without_replacing_anything(tmp_path):
    template = pod_mode_template()
    before_volumes = [v["name"] for v in template["spec"]["volumes"]]
    before_env = [e["name"] for e in template["spec"]["containers"][0]["env"]]
    given = overrides.load(
        write(
            tmp_path,
            "nodeSelector: {storage: onedata}\n"
            "tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]\n"
            "volumes: [{name: provider-ca, configMap: {name: provider-ca}}]\n"
            "volumeMounts: [{name: provider-ca, mountPath: /etc/ssl/provider, readOnly: true}]\n"
            "env: [{name: PRIMAGE_ONEDATA_OPTIONS, value: --insecure}]\n",
        )
    )
    spec = overrides.apply(template, given)["spec"]
    assert spec["nodeSelector"]["storage"] == "onedata"
    assert spec["tolerations"][-1]["key"] == "gpu"
    assert [v["name"] for v in spec["volumes"]] == [*before_volumes, "provider-ca"]
    container = spec["containers"][0]
    assert [e["name"] for e in container["env"]] == [*before_env, "PRIMAGE_ONEDATA_OPTIONS"]
    assert container["volumeMounts"][-1]["mountPath"] == "/etc/ssl/provider"


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("- a\n", "expected a mapping of env, nodeSelector", 1),
        ("env: []\nhostNetwork: true\n", "unknown key 'hostNetwork'", 2),
        ("volumes: {name: x}\n", "volumes: expected a list of mappings", 1),
        ("env:\n  - value: x\n", "env[0]: every entry needs a 'name' string", 2),
        ("nodeSelector: {zone: 3}\n", "nodeSelector: expected a mapping of label names to string values", 1),
    ],
)
def test_bad_overrides_name_the_file_the_line_and_the_field(tmp_path, text, message, line):
    path = write(tmp_path, text)
    with pytest.raises(PrimageError) as raised:
        overrides.load(path)
    assert message in str(raised.value)
    assert raised.value.problem.file == str(path)
    assert raised.value.problem.line == line


def test_an_override_never_replaces_what_the_workload_set(tmp_path):
    template = pod_mode_template()
    taken = template["spec"]["containers"][0]["env"][0]["name"]
    given = overrides.load(write(tmp_path, f"env: [{{name: {taken}, value: other}}]\n"))
    with pytest.raises(PrimageError, match=f"env {taken} is already in the workload's pods"):
        overrides.apply(template, given)


def test_a_missing_overrides_file_is_named(tmp_path):
    with pytest.raises(PrimageError, match=r"absent\.yaml: file not found"):
        overrides.load(tmp_path / "absent.yaml")


def test_the_space_pod_is_the_tasks_pod_running_the_listing_instead():
    template = pod_mode_template()
    argv = listing.local_argv(kube_space.mount_point(template), "inputs/*.nii.gz", "outputs/liver")
    pod = kube_space.space_pod(template, "liver", "liver", argv)
    spec, task = pod["spec"], template["spec"]
    (container,) = spec["containers"]
    assert container["args"] == argv
    assert argv[4] == "/mnt/onedata"  # the variant's mount point, where the script runs
    assert "command" not in container  # the variant's entrypoint mounts first
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] > 0
    # The same image, security context, device request and token Secret as the tasks...
    assert container["image"] == task["containers"][0]["image"]
    assert container["image"].endswith("-onedata")
    assert container["securityContext"] == task["containers"][0]["securityContext"]
    assert container["resources"] == task["containers"][0]["resources"]
    assert container["env"] == task["containers"][0]["env"]
    # ...and no input list: the ConfigMap volume of the Job is not the pod's.
    assert not [v for v in spec["volumes"] if "configMap" in v]
    assert [v for v in task["volumes"] if "configMap" in v], "the task pod mounts its input list"
    assert TOKEN not in str(pod)
    assert pod["metadata"]["labels"][kube_space.COMPONENT_LABEL] == kube_space.COMPONENT


def test_a_node_mode_template_has_no_space_pod():
    template = pod_mode_template()
    for item in template["spec"]["containers"][0]["env"]:
        if item["name"] == "ONECLIENT_MOUNT_POINT":
            item["name"] = "OTHER"
    with pytest.raises(PrimageError, match="pod mode expected"):
        kube_space.mount_point(template)


def test_resource_quantities_reach_the_client_as_strings():
    template = pod_mode_template()
    pod = kube_space.space_pod(template, "liver", "liver", ["true"])
    assert 1 in pod["spec"]["containers"][0]["resources"]["limits"].values()  # as rendered: an int
    sent = kube_space.quantities_as_strings(pod)
    for part in ("limits", "requests"):
        amounts = sent["spec"]["containers"][0]["resources"][part]
        assert all(isinstance(amount, str) for amount in amounts.values()), amounts
    assert sent["spec"]["containers"][0]["args"] == ["true"]
