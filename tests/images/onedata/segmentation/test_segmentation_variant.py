"""The segmentation variant end to end, as an htc_batch pod-mode task runs it: the sample volumes
written into the space through the mount, each task of the rendered Indexed Job (its environment,
its input-list ConfigMap, its security context) run with the variant's own command, its results
read back from the folder standing in for the space and scored against the known masks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.onedata_pod import STUB_BACKING, application_pod, given, new_token, stub_options

pytestmark = pytest.mark.engine

RESULTS = {"mask.nii.gz", "segmentation.json", "overlay.png", "_SUCCESS"}
DICE = """
import json, sys
import nibabel, numpy as np
scores = {}
for mask, truth in json.loads(sys.argv[1]):
    a, b = (np.asarray(nibabel.load(p).dataobj) > 0 for p in (mask, truth))
    scores[mask] = 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())
print(json.dumps(scores))
"""


def test_tasks_of_the_rendered_job_segment_the_sample_through_the_mount(image, docker, tmp_path):
    application_image = given("PRIMAGE_TEST_APPLICATION_IMAGE")
    space = tmp_path / "space"
    space.mkdir()
    token = new_token()
    sample_pod = application_pod("segmentation", application_image, image, token)
    mount = sample_pod.mount_point
    made = docker.run(
        "primage-segment", "sample", mount, "--count", "3", "--seed", "11",
        options=[*sample_pod.run_options(tmp_path, stub_options()), "-v", f"{space}:{STUB_BACKING}"],
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    cases = json.loads((space / "sample.json").read_text())["cases"]
    inputs = (space / "inputs.txt").read_text().splitlines()
    assert len(inputs) == len(cases) == 3

    # The Job as the role renders it for these inputs, its list from the rendered ConfigMap.
    pod = application_pod("segmentation", application_image, image, token, htc_batch_inputs=inputs)
    list_dir = pod.write_config_map("input-list", tmp_path / "configmap")
    assert (list_dir / "inputs.txt").read_text().splitlines() == inputs
    task_options = [
        *pod.run_options(tmp_path, stub_options()),
        "-v", f"{space}:{STUB_BACKING}",
        "-v", f"{list_dir}:{pod.mounts['input-list']}:ro",
    ]  # fmt: skip
    assert pod.env["PRIMAGE_INPUT_ROOT"] == mount
    for index in range(len(inputs)):
        task = docker.run(options=[*task_options, "-e", f"JOB_COMPLETION_INDEX={index}"], timeout=600)
        assert task.returncode == 0, task.stderr
        assert inputs[index] in task.stdout
        assert "primage-onedata: unmounted the space" in task.stderr

    outputs = Path(pod.env["PRIMAGE_OUTPUT_DIR"]).relative_to(mount)
    pairs = []
    for case in cases:
        folder = space / outputs / case["input"].removesuffix(".gz").removesuffix(".nii")
        assert {p.name for p in folder.iterdir()} == RESULTS, case["input"]
        record = json.loads((folder / "segmentation.json").read_text())
        assert record["input"]["path"] == case["input"]
        pairs.append([f"/space/{(folder / 'mask.nii.gz').relative_to(space)}", f"/space/{case['truth']}"])
    scored = dice_scores(docker, application_image, space, pairs)
    assert min(scored.values()) >= 0.90, scored

    again = docker.run(options=[*task_options, "-e", "JOB_COMPLETION_INDEX=0"], timeout=600)
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stdout


def dice_scores(docker, application_image: str, space: Path, pairs: list) -> dict[str, float]:
    """The Dice of each mask with its known truth, computed by the application image itself."""
    name = docker.name()
    completed = subprocess.run(
        ["docker", "run", "--name", name, "--network", "none", "-v", f"{space}:/space:ro", application_image,
         "python3", "-c", DICE, json.dumps(pairs)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    docker.remove(name)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)
