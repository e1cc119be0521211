"""The task contract: input list, output layout, skip, atomic writes, stopped and killed tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel
import numpy as np
import pytest
from helpers import environment_without_task_variables, temporaries

from primage_segmentation import errors, task
from primage_segmentation.phantoms import PhantomSpec, make_phantom, nifti_bytes


def write_list(root: Path, *entries: str) -> Path:
    listing = root / "inputs.txt"
    listing.write_text("".join(f"{e}\n" for e in entries))
    return listing


def test_list_mode_reads_line_index_plus_one_and_mirrors_the_relative_path(tmp_path, nifti_file, run_cli):
    (tmp_path / "inputs" / "other.nii.gz").write_bytes(nifti_file.read_bytes())
    listing = write_list(tmp_path, "inputs/other.nii.gz", "inputs/case.nii.gz")
    env = {
        "PRIMAGE_INPUT_LIST": listing,
        "JOB_COMPLETION_INDEX": 1,
        "PRIMAGE_INPUT_ROOT": tmp_path,
        "PRIMAGE_OUTPUT_DIR": tmp_path / "outputs",
    }
    result = run_cli("run", env=env)
    assert result.code == 0, result.err
    folder = tmp_path / "outputs" / "inputs" / "case"
    assert sorted(p.name for p in folder.iterdir()) == ["_SUCCESS", "mask.nii.gz", "overlay.png", "segmentation.json"]
    assert not (tmp_path / "outputs" / "inputs" / "other").exists()
    record = json.loads((folder / "segmentation.json").read_text())
    assert record["input"]["path"] == "inputs/case.nii.gz"


def test_the_record_holds_volume_box_statistics_parameters_version_and_timings(tmp_path, nifti_file, run_cli):
    assert run_cli("run", nifti_file, "--output-dir", tmp_path / "outputs").code == 0
    folder = tmp_path / "outputs" / "case"
    record = json.loads((folder / "segmentation.json").read_text())
    mask_image = nibabel.load(folder / "mask.nii.gz")
    mask = np.asarray(mask_image.dataobj).astype(bool)
    assert record["voxel_count"] == int(mask.sum()) > 0
    assert record["volume_ml"] == pytest.approx(mask.sum() * 1.0 * 1.0 * 2.5 / 1000, rel=1e-3)
    points = np.argwhere(mask)
    box = record["bounding_box"]
    assert box["voxels"] == {"min": points.min(axis=0).tolist(), "max": points.max(axis=0).tolist()}
    corner = nibabel.affines.apply_affine(mask_image.affine, points.min(axis=0))
    assert np.allclose(box["mm"]["min"], corner, atol=1e-3)
    source = np.asarray(nibabel.load(nifti_file).dataobj)
    assert record["intensity"]["lesion"]["mean"] == pytest.approx(float(source[mask].mean()), rel=1e-4)
    assert record["parameters"]["threshold_mode"] == "auto"
    assert record["tool"]["name"] == "primage-segmentation"
    assert record["tool"]["nibabel"] == nibabel.__version__
    assert set(record["timings_s"]) >= {"read", "denoise", "threshold", "morphology", "components", "total"}


def test_a_second_run_skips_and_touches_nothing(tmp_path, nifti_file, run_cli):
    outputs = tmp_path / "outputs"
    assert run_cli("run", nifti_file, "--output-dir", outputs).code == 0
    before = {p: p.stat().st_mtime_ns for p in outputs.rglob("*") if p.is_file()}
    again = run_cli("run", nifti_file, "--output-dir", outputs)
    assert again.code == 0
    assert "skipped" in again.out
    assert {p: p.stat().st_mtime_ns for p in outputs.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("change", ["parameters", "input", "missing-file", "force"])
def test_results_are_redone_when_they_no_longer_match(tmp_path, nifti_file, run_cli, change):
    outputs = tmp_path / "outputs"
    assert run_cli("run", nifti_file, "--output-dir", outputs).code == 0
    marker = outputs / "case" / "_SUCCESS"
    first = json.loads(marker.read_text())
    extra = []
    if change == "parameters":
        extra = ["--smoothing-mm", "1.5"]
    elif change == "input":
        os.utime(nifti_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    elif change == "missing-file":
        (outputs / "case" / "overlay.png").unlink()
    else:
        extra = ["--force"]
    again = run_cli("run", nifti_file, "--output-dir", outputs, *extra)
    assert again.code == 0
    assert "skipped" not in again.out
    assert json.loads(marker.read_text())["finished"] >= first["finished"]
    assert (outputs / "case" / "overlay.png").is_file()


def test_two_inputs_that_differ_only_by_suffix_are_refused(tmp_path, nifti_file, run_cli, small_phantom):
    plain = nifti_file.with_name("case.nii")
    plain.write_bytes(nifti_bytes(small_phantom.image, small_phantom.affine, compressed=False))
    assert run_cli("run", nifti_file, "--output-dir", tmp_path / "outputs").code == 0
    clash = run_cli("run", plain, "--output-dir", tmp_path / "outputs")
    assert clash.code == errors.USAGE
    assert "results of another input (case.nii.gz)" in clash.err
    assert "suffix" in clash.err


def _configurations(tmp: Path, listing: Path) -> dict:
    out = str(tmp / "out")
    task_list = {"PRIMAGE_OUTPUT_DIR": out, "PRIMAGE_INPUT_LIST": str(listing)}
    return {
        "no-output": ({}, "no output folder"),
        "no-input": ({"PRIMAGE_OUTPUT_DIR": out}, "no input"),
        "no-index": (task_list, "JOB_COMPLETION_INDEX must be"),
        "negative-index": ({**task_list, "JOB_COMPLETION_INDEX": "-1"}, "must be a task index"),
        "index-beyond": ({**task_list, "JOB_COMPLETION_INDEX": "2"}, "beyond the 2 lines"),
        "no-list": (
            {**task_list, "PRIMAGE_INPUT_LIST": str(tmp / "nolist.txt"), "JOB_COMPLETION_INDEX": "0"},
            "does not exist",
        ),
        "input-outside-root": (
            {**task_list, "JOB_COMPLETION_INDEX": "1", "PRIMAGE_INPUT_ROOT": str(tmp / "inputs")},
            "not under the input root",
        ),
    }


CONFIGURATIONS = list(_configurations(Path("/t"), Path("/t/l")))


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_configuration_errors_exit_64_with_one_line(tmp_path, nifti_file, run_cli, name):
    listing = write_list(tmp_path, "inputs/case.nii.gz", "/elsewhere/x.nii.gz")
    env, message = _configurations(tmp_path, listing)[name]
    result = run_cli("run", env=env)
    assert result.code == errors.USAGE == 64
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_an_output_folder_inside_a_series_is_refused(tmp_path, run_cli, small_phantom):
    from primage_segmentation.phantoms import write_dicom_series

    write_dicom_series(tmp_path / "series", small_phantom.image[:, :, :3], small_phantom.affine)
    result = run_cli("run", tmp_path / "series", "--input-root", tmp_path, "--output-dir", tmp_path)
    assert result.code == errors.USAGE
    assert "inside the input" in result.err


def test_an_output_folder_that_cannot_be_made_exits_73(tmp_path, nifti_file, run_cli):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the output folder should be\n")
    result = run_cli("run", nifti_file, "--output-dir", blocker)
    assert result.code == errors.CANT_CREATE == 73
    assert str(blocker) in result.err


def test_a_stop_in_the_middle_of_a_write_leaves_neither_file_nor_temporary(tmp_path, nifti_file, run_cli, monkeypatch):
    from primage_segmentation import atomic

    real_replace = os.replace

    def stopped_at_the_overlay(source, target):
        if str(target).endswith("overlay.png"):
            raise errors.Terminated()
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", stopped_at_the_overlay)
    result = run_cli("run", nifti_file, "--output-dir", tmp_path / "outputs")
    assert result.code == errors.TERMINATED == 143
    folder = tmp_path / "outputs" / "case"
    assert sorted(p.name for p in folder.iterdir()) == ["mask.nii.gz"], "complete files only, no marker"
    assert not temporaries(tmp_path)


def test_a_later_run_removes_what_a_killed_run_left(tmp_path, nifti_file, run_cli):
    folder = tmp_path / "outputs" / "case"
    folder.mkdir(parents=True)
    (folder / ".mask.nii.gz.tmp-123-abcd").write_bytes(b"half a mask")
    assert run_cli("run", nifti_file, "--output-dir", tmp_path / "outputs").code == 0
    assert not temporaries(tmp_path)
    assert (folder / "_SUCCESS").is_file()


def start_task(tmp_path: Path, shape=(192, 192, 96)) -> tuple[subprocess.Popen, Path]:
    phantom = make_phantom(PhantomSpec(shape=shape, spacing=(1.0, 1.0, 1.5), seed=21))
    source = tmp_path / "inputs" / "big.nii.gz"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(nifti_bytes(phantom.image, phantom.affine))
    command = [sys.executable, "-m", "primage_segmentation", "run", str(source), "--output-dir", str(tmp_path / "out")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment_without_task_variables()
    )
    return process, tmp_path / "out" / "big"  # the input root is the input's folder


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def complete_files_only(folder: Path) -> None:
    """Every file under a final name is whole: it parses as what it claims to be."""
    from PIL import Image

    for path in folder.iterdir():
        if path.name == "mask.nii.gz":
            assert np.asarray(nibabel.load(path).dataobj).ndim == 3
        elif path.name == "overlay.png":
            Image.open(path).load()
        elif path.name in ("segmentation.json", "_SUCCESS"):
            json.loads(path.read_text())
        else:
            assert path.name.startswith("."), f"unexpected {path.name}"
            assert ".tmp-" in path.name, f"unexpected {path.name}"


def test_sigterm_stops_the_task_with_143_and_removes_its_temporaries(tmp_path):
    # The signal goes once the output folder exists (the handler is set, the volume not yet read).
    # On a loaded machine this process may not run again before the task ends: then again, bigger.
    for attempt, shape in enumerate([(192, 192, 96), (256, 256, 128), (320, 320, 160)]):
        base = tmp_path / f"attempt-{attempt}"
        process, folder = start_task(base, shape=shape)
        wait_for(lambda: folder.is_dir() or process.poll() is not None)  # noqa: B023 (used at once)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            break
    else:
        pytest.fail("the task finished before SIGTERM reached it, three times with ever bigger volumes")
    assert process.returncode == errors.TERMINATED, err
    assert "stopped" in err
    complete_files_only(folder)
    assert not temporaries(base)
    assert not (folder / "_SUCCESS").exists()


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_sigkill_at_any_moment_leaves_no_partial_file_under_a_final_name(tmp_path, delay):
    process, folder = start_task(tmp_path, shape=(160, 160, 80))
    wait_for(lambda: folder.is_dir() or process.poll() is not None)
    time.sleep(delay)
    process.kill()
    process.communicate(timeout=60)
    if folder.is_dir():
        complete_files_only(folder)
        if (folder / "_SUCCESS").exists():
            assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} == set(task.RESULTS) | {"_SUCCESS"}
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "primage_segmentation",
            "run",
            str(tmp_path / "inputs" / "big.nii.gz"),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=environment_without_task_variables(),
        check=False,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert (folder / "_SUCCESS").is_file()
    assert not temporaries(tmp_path)
