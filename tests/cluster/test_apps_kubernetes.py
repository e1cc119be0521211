"""`primage htc submit` and `primage notebook` with --backend kubernetes on the real one-node cluster,
brought up for this module.

The segmentation image of this revision runs over sample volumes with known masks as the rendered
Indexed Job, created through the Kubernetes Python client and followed to the end; then a second
process lists, shows and reads the logs of it from the cluster's objects, a resubmission runs
nothing and changes no result, an image no node has stops the run with the kubelet's reason, and
delete leaves nothing of it on the cluster. A notebook starts over HTTPS on a node port, trusted through
its own CA, behind its token; stops, starts again with the same token, and is deleted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from primage import cluster

pytestmark = pytest.mark.cluster

PRIMAGE = Path(sys.executable).parent / "primage"
ROOT = Path(__file__).resolve().parents[2]
APP_UID = 1000  # the images' fixed user
RESULTS = {"mask.nii.gz", "segmentation.json", "overlay.png", "_SUCCESS"}
CASES = 3


def primage(*argv, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PRIMAGE), *map(str, argv)], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )


@pytest.fixture(scope="module")
def segmentation(built) -> str:
    from primage.commands import htc

    return htc.ensure_segmentation_image()  # the images env builds it first; alone, this builds it


@pytest.fixture(scope="module")
def notebook_image(built) -> str:
    from primage.commands import htc

    return htc.ensure_application_image("jupyter")


@pytest.fixture(scope="module")
def kubeconfig(segmentation, notebook_image):
    cluster.up(images=[segmentation, notebook_image], fuse_plugin=False)
    try:
        yield cluster.Layout().admin_kubeconfig
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def space(segmentation, tmp_path_factory):
    """The space as node mode wants it: a shared mount point, as oneclient's mount on a node whose root
    mount is shared (systemd's default). This host's PID 1 is no systemd and its root mount is private,
    so the folder is bind-mounted onto itself and made shared for the module, then unmounted."""
    folder = tmp_path_factory.mktemp("kube-apps") / "space"
    folder.mkdir()
    subprocess.run(["mount", "--bind", folder, folder], check=True)
    try:
        subprocess.run(["mount", "--make-shared", folder], check=True)
        yield _sample(segmentation, folder)
    finally:
        subprocess.run(["umount", "--lazy", folder], check=False)


def _sample(segmentation: str, folder: Path) -> tuple[Path, list[dict]]:
    os.chown(folder, APP_UID, APP_UID)
    made = subprocess.run(
        ["docker", "run", "--rm", "--name", f"primage-kube-apps-sample-{os.getpid()}", "--user", "1000:1000",
         "-v", f"{folder}:/mnt/onedata", segmentation, "primage-segment", "sample", "/mnt/onedata",
         "--count", str(CASES)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return folder, json.loads((folder / "sample.json").read_text())["cases"]


def submit(name: str, folder: Path, kubeconfig: Path, *options: str):
    return primage(
        "htc", "submit", name, "--space", folder, "--files", "inputs/*", "--parallel", "2",
        "--backend", "kubernetes", "--kubeconfig", kubeconfig, *options,
    )  # fmt: skip


def results(folder: Path) -> dict[str, tuple[int, str]]:
    """Every result file (the overview beside them is redrawn): its modification time and digest."""
    root = folder / "outputs" / "kidney"
    found = (p for p in root.rglob("*") if p.is_file() and p.parent != root)
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in found}


@pytest.fixture(scope="module")
def finished(kubeconfig, space):
    folder, cases = space
    return submit("kidney", folder, kubeconfig), folder, cases


def test_the_job_runs_every_input_with_the_results_of_the_task_contract(finished):
    done, folder, cases = finished
    assert done.returncode == 0, done.stderr
    for case in cases:
        result = folder / "outputs" / "kidney" / case["input"].removesuffix(".gz").removesuffix(".nii")
        assert {p.name for p in result.iterdir()} == RESULTS, case["input"]
        record = json.loads((result / "segmentation.json").read_text())
        assert record["volume_ml"] == pytest.approx(case["truth_volume_ml"], rel=0.2), case["input"]
    assert f"{CASES} tasks: {CASES} done, 0 failed; state succeeded" in done.stdout
    assert (folder / "outputs" / "kidney" / "overview.png").stat().st_size > 1000
    progress = [line for line in done.stderr.splitlines() if line.startswith("kidney: ")]
    assert progress
    assert progress[-1].startswith(f"kidney: {CASES}/{CASES} done  0 running  0 failed  0 left")
    assert "on the kubernetes backend" in done.stderr


def test_the_record_is_on_the_cluster_for_every_apps_command(finished, kubeconfig):
    options = ("--backend", "kubernetes", "--kubeconfig", kubeconfig)
    listed = primage("apps", "list", *options, "--json")
    assert listed.returncode == 0, listed.stderr
    (app,) = [a for a in json.loads(listed.stdout) if a["name"] == "kidney"]
    assert (app["backend"], app["state"], app["counts"]["done"], app["counts"]["total"]) == (
        "kubernetes",
        "succeeded",
        CASES,
        CASES,
    )
    shown = json.loads(primage("apps", "show", "kidney", *options, "--json").stdout)
    assert [(t["state"], t["exit_code"], t["attempts"]) for t in shown["tasks"]] == [("done", 0, 1)] * CASES
    assert all(t["log"].startswith("pod kidney/") for t in shown["tasks"])
    log = primage("apps", "logs", "kidney", "0", *options)
    assert log.returncode == 0, log.stderr
    assert log.stdout.strip()


def test_submitting_again_runs_nothing_and_changes_no_result(finished, kubeconfig):
    _done, folder, _cases = finished
    before = results(folder)
    again = submit("kidney", folder, kubeconfig, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["done"] == CASES
    assert "exists: following it" in again.stderr
    assert results(folder) == before


def test_an_image_no_node_has_stops_the_run_with_the_kubelets_reason(kubeconfig, space):
    folder, _cases = space
    done = submit("no-image", folder, kubeconfig, "--image", "primage/not-loaded:1.0")
    assert done.returncode == 1
    assert "no node of the cluster has the image primage/not-loaded:1.0 yet" in done.stderr
    assert "cannot start: ErrImage" in done.stderr or "cannot start: ImagePullBackOff" in done.stderr
    listed = primage("apps", "list", "--backend", "kubernetes", "--kubeconfig", kubeconfig, "--json")
    (app,) = [a for a in json.loads(listed.stdout) if a["name"] == "no-image"]
    assert app["state"] == "stopped"  # the Job is suspended: no pod waits for the image, the record stays
    gone = primage("apps", "delete", "no-image", "--backend", "kubernetes", "--kubeconfig", kubeconfig)
    assert gone.returncode == 0, gone.stderr


def test_delete_leaves_nothing_on_the_cluster_and_removes_the_results(finished, kubeconfig):
    _done, folder, _cases = finished
    deleted = primage("apps", "delete", "kidney", "--backend", "kubernetes", "--kubeconfig", kubeconfig)
    assert deleted.returncode == 0, deleted.stderr
    assert "namespace kidney" in deleted.stdout
    namespaces = cluster.kubectl(cluster.Layout(), "get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/kidney" not in namespaces
    assert not (folder / "outputs" / "kidney").exists()
    listed = primage("apps", "list", "--backend", "kubernetes", "--kubeconfig", kubeconfig, "--json")
    assert "kidney" not in [a["name"] for a in json.loads(listed.stdout)]
    shutil.rmtree(folder / "outputs", ignore_errors=True)


def _notebook_status(url: str, ca: Path, token: str | None = None) -> int:
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url.removesuffix("/lab") + "/api/status", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_notebook_starts_over_https_stops_starts_again_and_is_deleted(kubeconfig, space):
    import ssl
    import urllib.error

    folder, _cases = space
    options = ("--backend", "kubernetes", "--kubeconfig", kubeconfig)
    started = primage("notebook", "start", "lab", "--space", folder, *options, "--json")
    assert started.returncode == 0, started.stderr
    app = json.loads(started.stdout)
    url, token_file = app["url"], Path(app["token_file"])
    assert url.startswith(f"https://{cluster.Settings().node_ip}:"), url
    assert url.endswith("/lab"), url
    assert token_file.stat().st_mode & 0o077 == 0
    token = token_file.read_text().strip()
    assert token not in started.stdout + started.stderr
    ca = Path(app["note"].split("own CA, ")[1].split(":")[0])
    assert _notebook_status(url, ca) == 403
    assert _notebook_status(url, ca, token) == 200
    with pytest.raises(urllib.error.URLError) as untrusted:
        _notebook_status(url, Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"))
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)

    shown = primage("notebook", "url", "lab", *options)
    assert (shown.returncode, shown.stdout.strip()) == (0, url)
    token_file.unlink()  # as on another machine: the token is read back from the StatefulSet's Secret
    shown = primage("notebook", "url", "lab", "--with-token", *options)
    assert shown.returncode == 0, shown.stderr
    assert token in shown.stdout
    assert token_file.read_text().strip() == token
    assert token_file.stat().st_mode & 0o077 == 0
    listed = json.loads(primage("apps", "list", *options, "--json").stdout)
    assert [(a["kind"], a["state"]) for a in listed if a["name"] == "lab"] == [("notebook", "running")]
    log = primage("apps", "logs", "lab", *options)
    assert log.returncode == 0, log.stderr
    assert "token authentication on" in log.stdout + log.stderr
    assert token not in log.stdout + log.stderr

    stopped = primage("notebook", "stop", "lab", *options)
    assert stopped.returncode == 0, stopped.stderr
    listed = json.loads(primage("apps", "list", *options, "--json").stdout)
    assert [a["state"] for a in listed if a["name"] == "lab"] == ["stopped"]
    pods = cluster.kubectl(cluster.Layout(), "get", "pods", "-n", "lab", "-o", "name").stdout.split()
    assert pods == []

    again = primage("notebook", "start", "lab", "--space", folder, *options, "--json")
    assert again.returncode == 0, again.stderr
    url = json.loads(again.stdout)["url"]
    assert token_file.read_text().strip() == token, "the same token after a restart"
    assert _notebook_status(url, ca, token) == 200

    deleted = primage("apps", "delete", "lab", *options)
    assert deleted.returncode == 0, deleted.stderr
    namespaces = cluster.kubectl(cluster.Layout(), "get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/lab" not in namespaces
    assert not token_file.exists()
