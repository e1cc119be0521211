"""Runs of the role beyond converge: a missing token, no matching file, and new input files.

Named to run last (pytest runs files in alphabetical order): these runs change the deployment.
"""

from kube_contract.verify import api, request_log, run_playbook, select, stored_objects

from conftest import NAMESPACE


def test_missing_token_fails_at_the_start_naming_the_variable(host):
    before = len(request_log(host))
    run = run_playbook("missing_token.yml")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "Validating arguments against arg spec" in output
    assert "missing required arguments: htc_batch_onedata_token" in output, output[-3000:]
    assert "Install the pinned Kubernetes Python client" not in output
    assert len(request_log(host)) == before


def test_no_matching_file_fails_naming_folder_and_pattern(host):
    before = len(request_log(host))
    run = run_playbook("converge.yml", "-e", "htc_batch_input_pattern=*.dcm")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "No input file matches '*.dcm' in /mnt/onedata/inputs" in output, output[-3000:]
    assert len(request_log(host)) == before


def test_new_input_files_make_a_new_job(host):
    old_job = select(stored_objects(host), "Job", NAMESPACE)[0]
    host.run("echo stand-in > /mnt/onedata/inputs/case-003.nii.gz")
    try:
        run = run_playbook("converge.yml")
        assert run.returncode == 0, run.stdout[-3000:]
        objects = stored_objects(host)
        jobs = {j["metadata"]["name"]: j for j in select(objects, "Job", NAMESPACE)}
        assert len(jobs) == 2
        new_name = next(n for n in jobs if n != old_job["metadata"]["name"])
        assert jobs[new_name]["spec"]["completions"] == 4
        unchanged = jobs[old_job["metadata"]["name"]]
        assert unchanged["metadata"]["resourceVersion"] == old_job["metadata"]["resourceVersion"]
        lists = [c["data"]["inputs.txt"].splitlines() for c in select(objects, "ConfigMap", NAMESPACE)]
        assert [
            "inputs/case-001.nii.gz",
            "inputs/case-002.nii.gz",
            "inputs/case-003.nii.gz",
            "inputs/case-010.nii.gz",
        ] in lists
    finally:
        host.run("rm -f /mnt/onedata/inputs/case-003.nii.gz")
    # Leave the instance as converge left it, so verify can run again.
    new_configmap = next(c for c in select(objects, "ConfigMap", NAMESPACE) if c["data"]["count"] == "4")
    assert api(host, "DELETE", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{new_name}")[0] == 200
    code, _ = api(host, "DELETE", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{new_configmap['metadata']['name']}")
    assert code == 200
    host.run(
        f"rm -f /etc/primage/apps/{NAMESPACE}/30-job-{new_name}.yaml "
        f"/etc/primage/apps/{NAMESPACE}/20-configmap-{new_configmap['metadata']['name']}.yaml"
    )
