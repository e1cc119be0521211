"""htc_batch's input discovery (tasks/inputs.yml), run by ansible-playbook on a local folder laid
out like a space: files by pattern, DICOM series folders when asked, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from primage import ansible_env


def _discover(tmp_path, **options) -> subprocess.CompletedProcess:
    out = tmp_path / "inputs.json"
    playbook = tmp_path / "discover.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "ansible.builtin.include_role": {
                                "name": "primage.platform.htc_batch",
                                "tasks_from": "inputs",
                            }
                        },
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ htc_batch_inputs | to_json }}",
                                "dest": str(out),
                                "mode": "0600",
                            }
                        },
                    ],
                }
            ]
        )
    )
    values = tmp_path / "values.json"
    values.write_text(
        json.dumps(
            {
                "htc_batch_space_mount_point": str(tmp_path / "space"),
                "ansible_python_interpreter": sys.executable,
                **options,
            }
        )
    )
    env = ansible_env.environment()
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "ansible-tmp")
    completed = subprocess.run(
        [f"{sys.prefix}/bin/ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"@{values}", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    completed.inputs = json.loads(out.read_text()) if out.exists() else None
    return completed


@pytest.fixture
def space(tmp_path):
    inputs = tmp_path / "space" / "inputs"
    for name in ("case-002.nii.gz", "case-001.nii", "notes.txt", "nested/case-100.nii.gz"):
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / name).write_text("volume\n")
    for slice_name in ("IM0001.dcm", "IM0002.dcm", "scan.nii.gz"):  # a series; one file matches the pattern
        (inputs / "series-003" / slice_name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / "series-003" / slice_name).write_text("slice\n")
    return inputs


def test_files_only_by_default(tmp_path, space):
    run = _discover(tmp_path, htc_batch_input_pattern="*.nii.gz,*.nii,series-*")
    assert run.returncode == 0, run.stdout[-2000:]
    assert run.inputs == ["inputs/case-001.nii", "inputs/case-002.nii.gz"]


def test_series_folders_are_inputs_when_asked(tmp_path, space):
    run = _discover(tmp_path, htc_batch_input_pattern="*.nii.gz,*.nii,series-*", htc_batch_input_folders=True)
    assert run.returncode == 0, run.stdout[-2000:]
    assert run.inputs == ["inputs/case-001.nii", "inputs/case-002.nii.gz", "inputs/series-003"]


def test_nothing_inside_an_input_folder_is_an_input_of_its_own(tmp_path, space):
    run = _discover(
        tmp_path,
        htc_batch_input_pattern="*.nii.gz,series-*",
        htc_batch_input_folders=True,
        htc_batch_input_recursive=True,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert run.inputs == ["inputs/case-002.nii.gz", "inputs/nested/case-100.nii.gz", "inputs/series-003"]


def test_no_match_names_what_was_looked_for(tmp_path, space):
    run = _discover(tmp_path, htc_batch_input_pattern="*.dcm", htc_batch_input_folders=True)
    assert run.returncode != 0
    assert "No input file or folder matches '*.dcm' in " in run.stdout
    assert "(not recursively): there is nothing to process." in run.stdout
