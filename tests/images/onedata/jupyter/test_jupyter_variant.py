"""The Jupyter variant as the jupyter role's pod mode serves it: the StatefulSet's container (its
security context, its environment, the notebook token as a Secret file, the home and /tmp as
emptyDirs), the space mounted by the entrypoint, the server as the image's user behind its token,
and the example notebook run headless against the mounted space, its figure landing in it."""

from __future__ import annotations

import json
import secrets
import struct
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from support.onedata_pod import (
    APP_GID,
    APP_UID,
    STUB_BACKING,
    application_pod,
    given,
    host_processes,
    new_token,
    stub_options,
)

pytestmark = pytest.mark.engine

MAKE_VOLUME = """
import os, nibabel, numpy as np
x, y, z = np.mgrid[:64, :64, :32]
data = 100.0 * ((x - 32) ** 2 + (y - 32) ** 2 + 4 * (z - 16) ** 2 < 26 ** 2)
data += np.random.default_rng(0).normal(0, 8, data.shape)
os.makedirs(os.environ["ONECLIENT_MOUNT_POINT"] + "/inputs", exist_ok=True)
nibabel.save(nibabel.Nifti1Image(data.astype(np.int16), np.diag([1.0, 1.0, 2.0, 1.0])),
             os.environ["ONECLIENT_MOUNT_POINT"] + "/inputs/brain.nii.gz")
"""
RUN_EXAMPLE = """
import nbclient, nbformat
notebook = nbformat.read("/opt/primage/jupyter/examples/space-volume.ipynb", as_version=4)
client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": "/tmp"}})
client.execute()
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        print(output.get("text", ""), end="")
"""


def status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_notebook_serves_the_mounted_space_behind_its_token(image, docker, tmp_path):
    application_image = given("PRIMAGE_TEST_APPLICATION_IMAGE")
    space = tmp_path / "space"
    space.mkdir()
    onedata_token, notebook_token = new_token(), secrets.token_hex(24)
    pod = application_pod("jupyter", application_image, image, onedata_token)
    # The notebook-token Secret volume: root's file, readable by the pod's fsGroup (as the kubelet makes it).
    secret = tmp_path / "notebook-token"
    secret.mkdir()
    (secret / "token").write_text(notebook_token + "\n")
    (secret / "token").chmod(0o440)
    subprocess.run(["chown", f"0:{APP_GID}", str(secret / "token")], check=True)
    base = [*pod.run_options(tmp_path, stub_options()), "-v", f"{space}:{STUB_BACKING}"]

    made = docker.run("python3", "-c", MAKE_VOLUME, options=base)
    assert made.returncode == 0, made.stderr

    serve = [*base, "-v", f"{secret}:{pod.mounts['notebook-token']}:ro", "-p", "127.0.0.1::8888"]
    name = docker.start(options=serve)
    port = subprocess.run(["docker", "port", name, "8888/tcp"], capture_output=True, text=True, check=True)
    url = f"http://{port.stdout.strip().splitlines()[0]}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if status(f"{url}/api") == 200:
                break
        except OSError:
            pass
        assert docker.state(name)["Running"], docker.logs(name)
        assert time.monotonic() < deadline, docker.logs(name)
        time.sleep(0.5)
    assert status(f"{url}/api/contents") == 403
    assert status(f"{url}/api/contents", notebook_token) == 200

    server = [p for p in host_processes(name) if p["uid"] == APP_UID and "jupyter-lab" in " ".join(p["argv"])]
    assert server, "the notebook server runs as the image's user"
    assert not any(onedata_token in e for p in server for e in p["environ"])
    assert not any(notebook_token in e for p in host_processes(name) for e in p["environ"] + p["argv"])

    executed = subprocess.run(
        ["docker", "exec", "--user", f"{APP_UID}:{APP_GID}", "-e", "HOME=/home/primage", name,
         "env", "-u", "ONECLIENT_ACCESS_TOKEN", "python3", "-c", RUN_EXAMPLE],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert executed.returncode == 0, executed.stderr
    assert f"volume: {pod.mount_point}/inputs/brain.nii.gz" in executed.stdout
    figure = space / "figures" / "brain-filtered.png"
    assert figure.is_file(), executed.stdout
    data = figure.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 750)

    subprocess.run(["docker", "stop", "--time", "30", name], capture_output=True, check=True)
    log = docker.logs(name)
    assert "primage-onedata: unmounted the space from /mnt/onedata" in log
    assert onedata_token not in log
    assert notebook_token not in log
    assert json.dumps(docker.state(name)).count(notebook_token) == 0
