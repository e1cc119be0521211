"""Pod mode on the real one-node cluster: the htc_batch and jupyter workloads as the roles render
them with `<role>_onedata_mode: pod`, running the variants' test builds (the image pipeline's
`-onedata-test` images: the stub oneclient of the oneclient role's scenario, installed from a
signed repository through the variant layer's real apt-source code).

Each pod mounts the space itself through FUSE, with the device the project's device plugin
grants, SYS_ADMIN and never privileged, then runs the application as its user. The Job's results
are read back from the folder standing in for the Onedata provider and checked against the
sample's known lesions; the notebook, over HTTPS behind its token, reads a file of the provider
and writes one back through its mount. What stands in for the provider is the one change made to
the rendered pods here: the stub's backing folder (a hostPath) and its ownership options;
everything else (security context, token Secrets, device request, input list, TLS) is the roles'.
Then `primage htc submit --onedata SPACE --backend kubernetes`, whose pods (the listing pod and the
Job's) mount the space the same way, the stand-in given through the command's pod overrides."""

from __future__ import annotations

import json
import re
import secrets
import ssl
import subprocess
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import pytest
from cluster_verify import Kube, http

from primage import cluster, workloads
from support.onedata_pod import APP_GID, APP_UID, STUB_BACKING, new_token, stub_options

pytestmark = pytest.mark.cluster

NAME = "pod-mode-kidney"  # the applications' names, their namespaces
NOTEBOOK = "pod-mode-notebook"
CASES = 3
RESULTS = {"mask.nii.gz", "segmentation.json", "overlay.png", "_SUCCESS"}
FUSE_RESOURCE = "primage.eu/fuse"


@pytest.fixture(scope="module")
def images(built) -> tuple[str, str]:
    """(the segmentation image, its Onedata variant's test build) of this revision, built if missing."""
    from primage.commands import htc
    from primage.images import testing

    return htc.ensure_segmentation_image(), testing.ensure_test_build("segmentation")


@pytest.fixture(scope="module")
def notebook_images(built) -> tuple[str, str]:
    from primage.commands import htc
    from primage.images import testing

    return htc.ensure_application_image("jupyter"), testing.ensure_test_build("jupyter")


@pytest.fixture(scope="module")
def kube(images, notebook_images):
    cluster.up(images=[*images, *notebook_images])  # with the FUSE device plugin, as the kubernetes role deploys it
    try:
        yield Kube(cluster.Layout())
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def provider(images, tmp_path_factory) -> tuple[Path, list[dict], list[str]]:
    """The folder the stub oneclient serves as the space: sample volumes with known lesions, written
    by the segmentation image's own `sample` command, owned by root as a provider's storage is."""
    folder = tmp_path_factory.mktemp("pod-mode") / "provider"
    folder.mkdir()
    made = subprocess.run(
        ["docker", "run", "--rm", "--name", f"primage-pod-mode-sample-{folder.parent.name}", "--user", "0:0",
         "--network", "none", "-v", f"{folder}:/space", images[0], "primage-segment", "sample", "/space",
         "--count", str(CASES), "--seed", "5"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    cases = json.loads((folder / "sample.json").read_text())["cases"]
    inputs = (folder / "inputs.txt").read_text().splitlines()
    assert len(cases) == len(inputs) == CASES
    return folder, cases, inputs


def rendered(images: tuple[str, str], inputs: list[str], token: str) -> workloads.Workload:
    application, variant = images
    values = {
        "htc_batch_name": NAME,
        "htc_batch_image": application,
        "htc_batch_onedata_image": variant,
        "htc_batch_image_pull_policy": "Never",  # the test cluster pulls nothing
        "htc_batch_onedata_mode": "pod",
        "htc_batch_onedata_provider_host": "provider.onedata.test",
        "htc_batch_inputs": inputs,
        "htc_batch_parallelism": 2,
    }
    return workloads.render("htc_batch", values, {"htc_batch_onedata_token": token})


def with_stub_provider(workload: dict, provider: Path) -> dict:
    """The rendered Job or StatefulSet, its pods given the stub's backing folder (the stand-in for the provider)."""
    pod = workload["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pod["volumes"].append({"name": "stub-provider", "hostPath": {"path": str(provider), "type": "Directory"}})
    container["volumeMounts"].append({"name": "stub-provider", "mountPath": STUB_BACKING})
    container["env"] += [{"name": k, "value": v} for k, v in stub_options().items()]
    return workload


@dataclass
class Finished:
    """The Job after its end: as stored, its pods and their logs, the provider's folder, the sample."""

    stored: dict
    pods: list[dict]
    logs: dict[str, str]
    folder: Path
    cases: list[dict]
    token: str
    job: dict  # as rendered and applied


@pytest.fixture(scope="module")
def finished(kube, images, provider):
    folder, cases, inputs = provider
    token = new_token()
    workload = rendered(images, inputs, token)
    objects = [m.definition for m in workload.manifests]
    (job,) = (o for o in objects if o["kind"] == "Job")
    assert not [v for v in job["spec"]["template"]["spec"]["volumes"] if "hostPath" in v], "pod mode: no hostPath"
    with_stub_provider(job, folder)
    namespace = job["metadata"]["namespace"]
    kube.apply(*objects)
    try:
        kube.wait_for(
            f"the Job {namespace}/{job['metadata']['name']} to complete",
            lambda: _condition(kube.get("job", job["metadata"]["name"], namespace), ("Complete", "Failed")),
            timeout=600,
            diagnose=("describe", "pods", "-n", namespace),
        )
        stored = kube.get("job", job["metadata"]["name"], namespace)
        pods = kube.items("pods", namespace, "-l", f"batch.kubernetes.io/job-name={job['metadata']['name']}")
        logs = {p["metadata"]["name"]: kube.logs(p["metadata"]["name"], namespace) for p in pods}
        yield Finished(stored, pods, logs, folder, cases, token, job)
    finally:
        kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)


def _condition(job: dict, types: tuple[str, ...]) -> str | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition["type"] in types and condition["status"] == "True":
            return condition["type"]
    return None


def test_every_task_completes_through_the_fuse_mount_in_its_pod(finished):
    assert _condition(finished.stored, ("Complete", "Failed")) == "Complete", json.dumps(finished.logs)[-4000:]
    assert finished.stored["status"]["succeeded"] == CASES
    succeeded = [p for p in finished.pods if p["status"]["phase"] == "Succeeded"]
    assert len(succeeded) == CASES, [p["status"]["phase"] for p in finished.pods]
    for name, log in finished.logs.items():
        assert "oneclient (stub): provider provider.onedata.test" in log, (name, log)
        assert "primage-onedata: unmounted the space" in log, (name, log)


def test_the_results_land_in_the_space_and_match_the_known_lesions(finished):
    (container,) = finished.job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    outputs = Path(env["PRIMAGE_OUTPUT_DIR"]).relative_to(env["ONECLIENT_MOUNT_POINT"])
    for case in finished.cases:
        result = finished.folder / outputs / case["input"].removesuffix(".gz").removesuffix(".nii")
        assert {p.name for p in result.iterdir()} == RESULTS, case["input"]
        record = json.loads((result / "segmentation.json").read_text())
        assert record["input"]["path"] == case["input"]
        assert record["volume_ml"] == pytest.approx(case["truth_volume_ml"], rel=0.2), case["input"]


def test_the_pods_are_never_privileged_and_get_the_device_from_the_plugin(finished, kube):
    for pod in finished.pods:
        (container,) = pod["spec"]["containers"]
        context = container["securityContext"]
        assert context["privileged"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "SYS_ADMIN" in context["capabilities"]["add"]
        assert container["resources"]["limits"][FUSE_RESOURCE] == "1"
        assert pod["spec"]["securityContext"]["fsGroup"] == APP_GID
        assert not [v for v in pod["spec"]["volumes"] if v.get("hostPath", {}).get("path") == "/dev/fuse"]
    node = kube.get("node", cluster.Settings().node_name)
    assert int(node["status"]["allocatable"][FUSE_RESOURCE]) >= 1


def test_the_application_ran_as_its_user_and_the_token_stayed_in_oneclient(finished):
    for name, log in finished.logs.items():
        assert finished.token not in log, name
    assert finished.token not in json.dumps(finished.stored)
    (container,) = finished.job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ONECLIENT_ACCESS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "onedata-token"
    for name, log in finished.logs.items():
        assert re.search(rf"primage-onedata: running \S+ as {APP_UID}:{APP_GID}\n", log), (name, log)
    # Written through the mount by the application, stored by the stub's bindfs as the backing
    # folder's owner (root, as a provider stores a space's files): nothing of the host's changes hands.
    written = list(finished.folder.rglob("segmentation.json"))
    assert len(written) == CASES
    assert {p.stat().st_uid for p in written} == {0}


# --------------------------------------------------------------------------- the notebook


@pytest.fixture(scope="module")
def notebook(kube, notebook_images, tmp_path_factory):
    """The jupyter workload in pod mode over HTTPS (a CA made for it), its space the stub provider's folder."""
    from primage import tls

    application, variant = notebook_images
    base = tmp_path_factory.mktemp("pod-mode-notebook")
    folder = base / "provider"
    folder.mkdir()
    (folder / "from-the-provider.txt").write_text("stored by the provider\n")
    node_ip = cluster.Settings().node_ip
    made = tls.server_certificates(base / "tls", "pod mode notebook CA", ["localhost"], [node_ip], prefix="notebook")
    onedata_token, notebook_token = new_token(), secrets.token_hex(24)
    values = {
        "jupyter_name": NOTEBOOK,
        "jupyter_image": application,
        "jupyter_onedata_image": variant,
        "jupyter_image_pull_policy": "Never",
        "jupyter_onedata_mode": "pod",
        "jupyter_onedata_provider_host": "provider.onedata.test",
        "jupyter_tls_source": "content",
        "jupyter_tls_certificate": made.certificate.read_text(),
        "jupyter_storage_size": "",
        "jupyter_node_port": 0,
    }
    private = {
        "jupyter_onedata_token": onedata_token,
        "jupyter_token": notebook_token,
        "jupyter_tls_private_key": made.key.read_text(),
    }
    objects = [m.definition for m in workloads.render("jupyter", values, private).manifests]
    (statefulset,) = (o for o in objects if o["kind"] == "StatefulSet")
    with_stub_provider(statefulset, folder)
    kube.apply(*objects)
    try:
        kube.wait_for(
            f"the notebook {NOTEBOOK} to be ready",
            lambda: kube.get("statefulset", NOTEBOOK, NOTEBOOK).get("status", {}).get("readyReplicas", 0) >= 1,
            timeout=300,
            diagnose=("describe", "pods", "-n", NOTEBOOK),
        )
        (port,) = kube.get("service", NOTEBOOK, NOTEBOOK)["spec"]["ports"]
        context = ssl.create_default_context(cafile=str(made.ca))
        yield f"https://{node_ip}:{port['nodePort']}", context, notebook_token, onedata_token, folder
    finally:
        kube.run("delete", "namespace", NOTEBOOK, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)


def test_the_notebook_serves_over_https_behind_its_token(notebook):
    url, context, token, *_ = notebook
    assert http(f"{url}/api/contents", context=context)[0] == 403
    assert http(f"{url}/api/contents", token=token, context=context)[0] == 200
    with pytest.raises(urllib.error.URLError):
        http(f"{url}/api", context=ssl.create_default_context())  # without the notebook's CA


def test_the_notebook_reads_and_writes_the_space_its_pod_mounts(notebook, kube):
    url, context, token, onedata_token, folder = notebook
    status, body = http(f"{url}/api/contents/space/from-the-provider.txt?content=1", token=token, context=context)
    assert status == 200, body
    assert json.loads(body)["content"] == "stored by the provider\n"
    written = {"type": "file", "format": "text", "content": "written in the notebook\n"}
    status, body = http(
        f"{url}/api/contents/space/from-the-notebook.txt", token=token, method="PUT", body=written, context=context
    )
    assert status in (200, 201), body
    assert (folder / "from-the-notebook.txt").read_text() == "written in the notebook\n"
    (pod,) = kube.items("pods", NOTEBOOK)
    log = kube.logs(pod["metadata"]["name"], NOTEBOOK)
    assert "oneclient (stub): provider provider.onedata.test" in log
    assert re.search(rf"primage-onedata: running \S+ as {APP_UID}:{APP_GID}\n", log), log
    assert onedata_token not in log
    assert token not in log


# --- `primage htc submit --onedata SPACE --backend kubernetes`: the command's own pods ----------------

CLI_NAME = "onedata-kidney"
PRIMAGE = Path(sys.executable).parent / "primage"
ROOT = Path(__file__).resolve().parents[2]


def primage(*argv, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PRIMAGE), *map(str, argv)], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )


@pytest.fixture(scope="module")
def onedata_cli(kube, images, tmp_path_factory):
    """What a developer gives: a private Onedata config, and pod overrides (here: the stand-in for the
    provider, its backing folder and ownership options, the one thing a real provider does not need)."""
    base = tmp_path_factory.mktemp("onedata-cli")
    folder = base / "provider"
    folder.mkdir()
    cases = _sample_into(images[0], folder)
    token = new_token()
    config = base / "onedata.yaml"
    config.touch(mode=0o600)
    config.write_text(f"provider_host: provider.onedata.test\nspaces:\n  KidneyStudy: {{token: {token}}}\n")
    overrides = base / "pod-overrides.yaml"
    overrides.write_text(
        json.dumps(
            {
                "volumes": [{"name": "stub-provider", "hostPath": {"path": str(folder), "type": "Directory"}}],
                "volumeMounts": [{"name": "stub-provider", "mountPath": STUB_BACKING}],
                "env": [{"name": k, "value": v} for k, v in stub_options().items()],
            }
        )
    )
    options = (
        "--onedata", "KidneyStudy", "--onedata-config", config, "--onedata-image", images[1],
        "--pod-overrides", overrides, "--backend", "kubernetes", "--kubeconfig", cluster.Layout().admin_kubeconfig,
    )  # fmt: skip
    return folder, cases, token, options


def _sample_into(image: str, folder: Path) -> list[dict]:
    made = subprocess.run(
        ["docker", "run", "--rm", "--name", f"primage-onedata-cli-sample-{folder.parent.name}", "--user", "0:0",
         "--network", "none", "-v", f"{folder}:/space", image, "primage-segment", "sample", "/space",
         "--count", str(CASES), "--seed", "7"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return json.loads((folder / "sample.json").read_text())["cases"]


def _cli_results(folder: Path) -> dict[str, int]:
    root = folder / "outputs" / CLI_NAME
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cli_run(onedata_cli):
    folder, cases, token, options = onedata_cli
    done = primage("htc", "submit", CLI_NAME, "--files", "inputs/*", "--parallel", "2", *options)
    return done, folder, cases, token, options


def test_submit_with_onedata_lists_the_space_and_runs_every_input_in_pods_that_mount_it(cli_run, kube):
    done, folder, cases, token, _options = cli_run
    assert done.returncode == 0, done.stderr
    assert "listing the Onedata space KidneyStudy through a pod of" in done.stderr
    assert f"{CASES} tasks: {CASES} done, 0 failed; state succeeded" in done.stdout
    for case in cases:
        result = folder / "outputs" / CLI_NAME / case["input"].removesuffix(".gz").removesuffix(".nii")
        assert {p.name for p in result.iterdir()} == RESULTS, case["input"]
        record = json.loads((result / "segmentation.json").read_text())
        assert record["volume_ml"] == pytest.approx(case["truth_volume_ml"], rel=0.2), case["input"]
    assert token not in done.stdout + done.stderr
    assert not [p for p in kube.items("pods", CLI_NAME) if p["metadata"]["name"].startswith(f"{CLI_NAME}-space-")]
    (job,) = kube.items("jobs", CLI_NAME)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].endswith("-onedata-test"), "the variant given with --onedata-image"
    assert not [v for v in pod["volumes"] if "hostPath" in v and v["name"] != "stub-provider"]
    assert token not in json.dumps(job)


def test_submitting_again_finds_the_results_in_the_space_and_runs_nothing(cli_run):
    _done, folder, _cases, _token, options = cli_run
    before = _cli_results(folder)
    again = primage("htc", "submit", CLI_NAME, "--files", "inputs/*", "--parallel", "2", *options, "--json")
    assert again.returncode == 0, again.stderr
    tasks = json.loads(again.stdout)["tasks"]
    assert [t["reused"] for t in tasks] == [True] * CASES, "complete results seen through the listing pod"
    assert _cli_results(folder) == before


def test_no_match_in_the_space_names_what_it_holds_and_leaves_no_pod(onedata_cli, kube):
    _folder, _cases, _token, options = onedata_cli
    done = primage("htc", "submit", "onedata-nothing", "--files", "scans/*.nii.gz", *options)
    assert done.returncode == 1
    assert "no file matches --files 'scans/*.nii.gz' in the Onedata space KidneyStudy (it holds " in done.stderr
    top = done.stderr.partition("(it holds ")[2].partition(";")[0].split(", ")  # as the listing pod saw it
    assert {"inputs/", "inputs.txt", "sample.json"} <= set(top), top
    assert "Traceback" not in done.stderr
    namespaces = kube.run("get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/onedata-nothing" not in namespaces, "the namespace made for the listing pod is gone"


def test_output_names_the_space_and_delete_removes_the_results_through_a_pod(cli_run, kube):
    _done, folder, cases, _token, _options = cli_run
    where = ("--backend", "kubernetes", "--kubeconfig", cluster.Layout().admin_kubeconfig)
    output = primage("apps", "output", CLI_NAME, *where)
    assert output.returncode == 0, output.stderr
    assert f"outputs/{CLI_NAME} in the Onedata space KidneyStudy" in output.stdout
    copy = primage("apps", "output", CLI_NAME, *where, "--copy", folder.parent / "copied")
    assert copy.returncode == 1
    assert "are not in a folder of this machine" in copy.stderr
    deleted = primage("apps", "delete", CLI_NAME, *where)
    assert deleted.returncode == 0, deleted.stderr
    assert f"{CASES} result folder(s) in outputs/{CLI_NAME} of the Onedata space KidneyStudy" in deleted.stdout
    assert not (folder / "outputs" / CLI_NAME).exists()
    assert sorted(p.name for p in (folder / "inputs").iterdir()) == sorted(Path(c["input"]).name for c in cases)
    assert f"namespace/{CLI_NAME}" not in kube.run("get", "namespaces", "-o", "name").stdout.split()
