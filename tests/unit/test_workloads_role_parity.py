"""The role and the harness render the same manifests: one source, two callers.

For a few workload cases, ansible-playbook runs kubernetes_app's own rendering expression
(`kubernetes_app__render`, what its manifests.yml applies) inside the application role with the
case's values, on localhost; the result must equal what primage.workloads renders in-process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from primage import workloads

CASES = ["htc_batch/ci/pod-mode.yml", "htc_batch/ci/private-registry.yml", "jupyter/ci/pvc-home.yml"]


def _collection(tmp_path):
    """A copy of the collection with probe entry points added (the tree itself stays untouched)."""
    base = tmp_path / "collections"
    target = base / "ansible_collections" / "primage" / "platform"
    shutil.copytree(ROOT / "ansible", target, ignore=shutil.ignore_patterns("molecule", "ci"))
    return base, target


def _probe(tmp_path, case: workloads.Case, throwaway: dict) -> list[dict]:
    base, collection = _collection(tmp_path)
    role = collection / "roles" / case.application
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    include = next(t for t in tasks if "ansible.builtin.include_role" in t)
    out = tmp_path / "rendered.json"
    (collection / "roles" / "kubernetes_app" / "tasks" / "probe.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render as manifests.yml does",
                    "ansible.builtin.copy": {
                        "content": "{{ kubernetes_app__render | to_json }}",
                        "dest": str(out),
                        "mode": "0600",
                    },
                }
            ]
        )
    )
    (role / "tasks" / "probe.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Hand the values to kubernetes_app as main.yml does",
                    "ansible.builtin.include_role": {"name": "primage.platform.kubernetes_app", "tasks_from": "probe"},
                    "vars": include["vars"],
                }
            ]
        )
    )
    playbook = tmp_path / "probe.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "ansible.builtin.include_role": {
                                "name": f"primage.platform.{case.application}",
                                "tasks_from": "probe",
                            }
                        }
                    ],
                }
            ]
        )
    )
    # Values reach the play as extra vars from a private file, as a user's vault would.
    values = tmp_path / "values.json"
    values.write_text(json.dumps({**case.values, **throwaway, "ansible_python_interpreter": sys.executable}))
    values.chmod(0o600)
    env = {
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ANSIBLE_COLLECTIONS_PATH": str(base),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
    }
    completed = subprocess.run(
        [f"{sys.prefix}/bin/ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"@{values}", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("case_file", CASES)
def test_role_and_harness_render_the_same_manifests(tmp_path, case_file):
    case = workloads.load_case(ROOT / "ansible" / "roles" / case_file)
    throwaway = {name: f"throwaway-{name}" for name in case.secret_names}
    harness = [m.definition for m in workloads.render(case.application, case.values, throwaway).manifests]
    role = _probe(tmp_path, case, throwaway)
    assert [(d["kind"], d["metadata"]["name"]) for d in role] == [(d["kind"], d["metadata"]["name"]) for d in harness]
    assert role == harness
