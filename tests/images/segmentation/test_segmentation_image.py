"""The segmentation image from outside: the HTC task contract over a folder laid out like a space.

Each task runs as the htc_batch role's Indexed Job runs it: the image's own command, the input
list mounted read-only apart from the space, PRIMAGE_INPUT_LIST / PRIMAGE_INPUT_ROOT /
PRIMAGE_OUTPUT_DIR / JOB_COMPLETION_INDEX in the environment. Outputs are checked without the
application's code: NIfTI and PNG headers parsed here, the Dice with the known masks computed by
nibabel in the image.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import APP_UID, image_config, writable_by_app

pytestmark = pytest.mark.engine

MOUNT = "/mnt/onedata"  # where the pods mount the space (htc_batch_pod_mount_point)
LIST_DIR = "/etc/primage/htc-batch"  # where the Job mounts its input-list ConfigMap
RESULTS = {"mask.nii.gz", "segmentation.json", "overlay.png", "_SUCCESS"}
SIZE_LIMIT = 350 * 1000 * 1000  # bytes, as the engine counts them
DO_NOT_RETRY_BAD_INPUT = 65

DICE = """
import json, sys
import nibabel, numpy as np
scores = {}
for mask, truth in json.loads(sys.argv[1]):
    a, b = (np.asarray(nibabel.load(p).dataobj) > 0 for p in (mask, truth))
    scores[mask] = 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())
print(json.dumps(scores))
"""


def task_environment(index: int) -> dict:
    return {
        "PRIMAGE_INPUT_LIST": f"{LIST_DIR}/inputs.txt",
        "PRIMAGE_INPUT_ROOT": MOUNT,
        "PRIMAGE_OUTPUT_DIR": f"{MOUNT}/outputs",
        "JOB_COMPLETION_INDEX": str(index),
    }


def run_task(docker, space: Path, list_dir: Path, index: int, options=()):
    return docker.run(
        volumes=[(space, MOUNT), (list_dir, LIST_DIR, "ro")], env=task_environment(index), options=options
    )


def make_sample(docker, space: Path, *options: str) -> tuple[dict, Path]:
    made = docker.run("primage-segment", "sample", MOUNT, *options, volumes=[(space, MOUNT)])
    assert made.returncode == 0, made.stderr
    list_dir = space.parent / "configmap"
    list_dir.mkdir(exist_ok=True)
    shutil.copy(space / "inputs.txt", list_dir / "inputs.txt")
    return json.loads((space / "sample.json").read_text()), list_dir


def output_folder(space: Path, case_input: str) -> Path:
    return space / "outputs" / case_input.removesuffix(".gz").removesuffix(".nii")


def nifti_geometry(path: Path) -> dict:
    """dim, sform code and rows of a NIfTI-1 header, read with the standard library."""
    raw = path.read_bytes()
    header = gzip.decompress(raw)[:348] if raw[:2] == b"\x1f\x8b" else raw[:348]
    order = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    assert struct.unpack(order + "i", header[:4])[0] == 348, f"{path}: not a NIfTI-1 header"
    dims = struct.unpack(order + "8h", header[40:56])
    return {
        "shape": dims[1 : 1 + dims[0]],
        "sform_code": struct.unpack(order + "h", header[254:256])[0],
        "srow": [round(v, 4) for v in struct.unpack(order + "12f", header[280:328])],
    }


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    assert data[-8:-4] == b"IEND", f"{path}: truncated PNG"
    return struct.unpack(">II", data[16:24])


def whole(path: Path) -> None:
    """The file under a final name is complete: it parses as what its name says."""
    if path.name == "mask.nii.gz":
        gzip.decompress(path.read_bytes())
        nifti_geometry(path)
    elif path.name == "overlay.png":
        png_size(path)
    elif path.name in ("segmentation.json", "_SUCCESS"):
        json.loads(path.read_text())
    else:
        pytest.fail(f"unexpected file {path}")


def test_the_image_is_small_runs_as_non_root_under_tini(image, docker):
    config = image_config(image)
    assert config["Size"] <= SIZE_LIMIT, f"{config['Size'] / 1e6:.0f} MB exceeds {SIZE_LIMIT / 1e6:.0f} MB"
    assert config["Config"]["User"] == "1000:1000"
    assert config["Config"]["Entrypoint"] == ["/usr/bin/tini", "--"]
    who = docker.run("sh", "-c", "id -u; id -g; tr '\\0' ' ' < /proc/1/cmdline")
    assert who.returncode == 0, who.stderr
    uid, gid, pid1 = who.stdout.splitlines()
    assert (int(uid), int(gid)) == (APP_UID, 1000)
    assert pid1.startswith("/usr/bin/tini")
    tools = docker.run("sh", "-c", "command -v pip pip3 gcc cc strip")
    assert tools.stdout.strip() == "", f"build tools in the image: {tools.stdout}"
    no_pip = docker.run("python3", "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('pip') is not None)")
    assert no_pip.returncode == 0, "pip left the image with its build stage"


def test_tasks_over_a_space_write_every_result_and_a_second_run_skips_them(docker, space):
    manifest, list_dir = make_sample(docker, space, "--count", "4", "--seed", "7")
    cases = manifest["cases"]
    assert any((space / c["input"]).is_dir() for c in cases), "a DICOM series among the inputs"

    for index, case in enumerate(cases):
        result = run_task(docker, space, list_dir, index)
        assert result.returncode == 0, result.stderr
        assert case["input"] in result.stdout
    pairs = []
    for case in cases:
        folder = output_folder(space, case["input"])
        assert {p.name for p in folder.iterdir()} == RESULTS, case["input"]
        for path in folder.iterdir():
            assert path.stat().st_uid == APP_UID, f"{path} is not owned by the image's user"
            whole(path)
        mask, truth = nifti_geometry(folder / "mask.nii.gz"), nifti_geometry(space / case["truth"])
        assert mask == truth, f"{case['input']}: the mask's geometry differs from the input's"
        record = json.loads((folder / "segmentation.json").read_text())
        assert record["input"]["path"] == case["input"]
        assert record["volume_ml"] == pytest.approx(case["truth_volume_ml"], rel=0.10)
        width, height = png_size(folder / "overlay.png")
        assert width >= 480
        assert height >= 150
        mask_in_container = f"{MOUNT}/{(folder / 'mask.nii.gz').relative_to(space)}"
        pairs.append([mask_in_container, f"{MOUNT}/{case['truth']}"])
    scores = docker.run("python3", "-c", DICE, json.dumps(pairs), volumes=[(space, MOUNT, "ro")])
    assert scores.returncode == 0, scores.stderr
    assert min(json.loads(scores.stdout).values()) >= 0.90

    before = {p: p.stat().st_mtime_ns for p in (space / "outputs").rglob("*") if p.is_file()}
    for index in range(len(cases)):
        again = run_task(docker, space, list_dir, index)
        assert again.returncode == 0, again.stderr
        assert "skipped" in again.stdout
    after = {p: p.stat().st_mtime_ns for p in (space / "outputs").rglob("*") if p.is_file()}
    assert after == before, "a second run touched no file"


def wait_for_folder(docker, name: str, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not folder.is_dir():
        if not docker.state(name)["Running"] or time.monotonic() > deadline:
            pytest.fail(f"the task ended or stalled before writing its output folder: {docker.logs(name)}")
        time.sleep(0.02)


def test_killed_tasks_leave_no_partial_file_and_the_next_run_completes(docker, space):
    # One large volume, so that kills land in the middle of the work.
    manifest, list_dir = make_sample(docker, space, "--count", "1", "--shape", "256,256,128")
    folder = output_folder(space, manifest["cases"][0]["input"])
    for delay in (0.0, 0.4, 1.0, 1.8):
        name = docker.start(volumes=[(space, MOUNT), (list_dir, LIST_DIR, "ro")], env=task_environment(0))
        wait_for_folder(docker, name, folder)
        time.sleep(delay)
        subprocess.run(["docker", "kill", name], capture_output=True, check=False)  # SIGKILL, unless it is done
        exit_code = docker.state(name)["ExitCode"]
        assert exit_code in (0, 137), docker.logs(name)
        for path in folder.iterdir():
            if path.name.startswith(".") and ".tmp-" in path.name:
                continue  # a temporary name, never mistaken for a result
            whole(path)
        if (folder / "_SUCCESS").exists():
            # The marker is written last: where it is, every result is.
            assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} == RESULTS
        docker.remove(name)
        if exit_code == 0:
            break  # it finished before the kill: longer delays would too
    result = run_task(docker, space, list_dir, 0)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in folder.iterdir()} == RESULTS, "temporary files of killed runs are removed"


def test_a_stopped_task_exits_143_and_leaves_no_temporary(docker, space):
    manifest, list_dir = make_sample(docker, space, "--count", "1", "--shape", "256,256,128")
    folder = output_folder(space, manifest["cases"][0]["input"])
    name = docker.start(volumes=[(space, MOUNT), (list_dir, LIST_DIR, "ro")], env=task_environment(0))
    wait_for_folder(docker, name, folder)
    subprocess.run(["docker", "stop", "--time", "20", name], capture_output=True, check=True)
    state = docker.state(name)
    if state["ExitCode"] == 0:
        pytest.fail("the task finished before it was stopped; use a larger volume")
    assert state["ExitCode"] == 143, docker.logs(name)
    assert not any(p.name.startswith(".") for p in folder.iterdir()), "SIGTERM removes the temporaries"
    assert not (folder / "_SUCCESS").exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.nii.gz", b""), ("truncated.nii.gz", "HALF"), ("notes.nii", b"not an image\n" * 30)],
    ids=["empty", "truncated", "not-an-image"],
)
def test_bad_input_exits_with_the_do_not_retry_code_and_one_line(docker, space, tmp_path, name, content):
    inputs = writable_by_app(space / "inputs")
    if content == "HALF":
        made = docker.run("primage-segment", "sample", f"{MOUNT}/made", "--count", "1", volumes=[(space, MOUNT)])
        assert made.returncode == 0, made.stderr
        data = (space / "made" / "inputs" / "case-001.nii.gz").read_bytes()
        content = data[: len(data) // 2]
    (inputs / name).write_bytes(content)
    list_dir = tmp_path / "configmap"
    list_dir.mkdir()
    (list_dir / "inputs.txt").write_text(f"inputs/{name}\n")
    result = run_task(docker, space, list_dir, 0)
    assert result.returncode == DO_NOT_RETRY_BAD_INPUT, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{MOUNT}/inputs/{name}" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (space / "outputs" / "inputs" / name.split(".")[0] / "_SUCCESS").exists()
