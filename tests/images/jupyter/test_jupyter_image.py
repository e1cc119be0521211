"""The Jupyter image from outside: served behind a token, the token never shown, the example run headless."""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import APP_UID, image_config
from primage import tls

pytestmark = pytest.mark.engine

SIZE_LIMIT = 900 * 1000 * 1000  # bytes, as the engine counts them
HOME = "/home/primage"
SECRET_DIR = "/var/run/secrets/primage-jupyter"  # noqa: S105  (where a Kubernetes Secret would be mounted)
TLS_DIR = "/etc/primage/notebook-tls"  # where the jupyter role mounts its TLS Secret
TOKEN_HOME_FILE = f"{HOME}/.local/share/primage/jupyter-token"
MOUNT = "/mnt/onedata"

RUN_EXAMPLE = """
import nbclient, nbformat
notebook = nbformat.read("/opt/primage/jupyter/examples/space-volume.ipynb", as_version=4)
client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": "/tmp"}})
client.execute()
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        print(output.get("text", ""), end="")
"""
MAKE_VOLUME = """
import nibabel, numpy as np
x, y, z = np.mgrid[:64, :64, :32]
data = 100.0 * ((x - 32) ** 2 + (y - 32) ** 2 + 4 * (z - 16) ** 2 < 26 ** 2)
data += 80.0 * ((x - 40) ** 2 + (y - 28) ** 2 + 4 * (z - 16) ** 2 < 6 ** 2)
data += np.random.default_rng(0).normal(0, 8, data.shape)
image = nibabel.Nifti1Image(data.astype(np.int16), np.diag([1.0, 1.0, 2.0, 1.0]))
nibabel.save(image, "/mnt/onedata/inputs/brain.nii.gz")
"""
FIGURE_CONTRAST = """
import sys
import numpy as np
from PIL import Image
print(float(np.asarray(Image.open(sys.argv[1]).convert("L"), dtype=float).std()))
"""


def request(url: str, token: str | None = None, query_token: str | None = None, context=None) -> int:
    if query_token:
        url += f"?token={query_token}"
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5, context=context) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def serve(docker, volumes=(), env=None, context=None) -> tuple[str, str]:
    """Start the image's own command with the port published on loopback; wait until /api answers
    (over HTTPS, trusting `context`, when one is given)."""
    name = docker.start(volumes=volumes, env=env, options=["-p", "127.0.0.1::8888"])
    port = subprocess.run(["docker", "port", name, "8888/tcp"], capture_output=True, text=True, check=True)
    address = port.stdout.strip().splitlines()[0]
    base = f"{'https' if context else 'http'}://{address.replace('127.0.0.1', 'localhost')}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if request(f"{base}/api", context=context) == 200:
                return name, base
        except OSError:
            pass
        if not docker.state(name)["Running"] or time.monotonic() > deadline:
            pytest.fail(f"the notebook did not answer: {docker.logs(name)}")
        time.sleep(0.5)


def healthcheck(docker, name: str) -> subprocess.CompletedProcess:
    """The image's own health check run in the serving container; it must pass."""
    health = subprocess.run(
        ["docker", "exec", name, "python3", "/opt/primage/jupyter/healthcheck.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert health.returncode == 0, health.stderr
    return health


def tls_folder(tmp_path: Path, certificates: tls.ServerCertificates, key: Path | None = None) -> Path:
    """tls.crt and tls.key as a kubernetes.io/tls Secret volume lays them out (mode 0644)."""
    folder = tmp_path / "tls"
    folder.mkdir()
    (folder / "tls.crt").write_bytes(certificates.certificate.read_bytes())
    (folder / "tls.key").write_bytes((key or certificates.key).read_bytes())
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def secret_folder(tmp_path: Path, token: str) -> Path:
    folder = tmp_path / "secret"
    folder.mkdir()
    (folder / "token").write_text(token + "\n")
    (folder / "token").chmod(0o644)  # as a Secret volume's default mode
    return folder


def command_lines(docker, name: str) -> str:
    listing = subprocess.run(
        ["docker", "exec", name, "sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout


def test_the_image_is_within_its_size_runs_as_non_root_and_declares_a_health_check(image, docker):
    config = image_config(image)
    assert config["Size"] <= SIZE_LIMIT, f"{config['Size'] / 1e6:.0f} MB exceeds {SIZE_LIMIT / 1e6:.0f} MB"
    assert config["Config"]["User"] == "1000:1000"
    assert config["Config"]["Healthcheck"]["Test"][-1].endswith("healthcheck.py")
    who = docker.run("sh", "-c", "id -u; echo $HOME")
    assert who.stdout.split() == [str(APP_UID), HOME]


def test_served_only_with_its_token_which_no_log_or_command_line_shows(docker, tmp_path):
    token = secrets.token_hex(24)
    name, base = serve(
        docker,
        volumes=[(secret_folder(tmp_path, token), SECRET_DIR, "ro")],
        env={"JUPYTER_TOKEN_FILE": f"{SECRET_DIR}/token"},
    )
    assert request(f"{base}/api/contents") == 403
    assert request(f"{base}/api/status") == 403
    assert request(f"{base}/api/contents", token="0" * 48) == 403
    assert request(f"{base}/api/contents", token=token) == 200
    assert request(f"{base}/api/status", query_token=token) == 200
    with urllib.request.urlopen(f"{base}/lab", timeout=5) as page:  # noqa: S310
        assert urllib.parse.urlsplit(page.url).path == "/login", "the Lab page sends to the login form"
    healthcheck(docker, name)
    logs = docker.logs(name)
    assert "token=..." in logs, "the server prints its URL with the token elided"
    assert token not in logs
    assert token not in command_lines(docker, name)
    assert token not in json.dumps(image_config(docker.image)) + json.dumps(docker.state(name))


def test_with_a_tls_secret_it_speaks_only_https_behind_its_token(docker, tmp_path):
    certificates = tls.loopback_certificates(tmp_path / "ca", "primage test notebook CA")
    trusted = ssl.create_default_context(cafile=str(certificates.ca))
    token = secrets.token_hex(24)
    name, base = serve(
        docker,
        volumes=[
            (secret_folder(tmp_path, token), SECRET_DIR, "ro"),
            (tls_folder(tmp_path, certificates), TLS_DIR, "ro"),
        ],
        env={"JUPYTER_TOKEN_FILE": f"{SECRET_DIR}/token", "PRIMAGE_JUPYTER_TLS_DIR": TLS_DIR},
        context=trusted,
    )
    assert base.startswith("https://localhost:")
    assert request(f"{base}/api/contents", context=trusted) == 403
    assert request(f"{base}/api/contents", token=token, context=trusted) == 200
    with pytest.raises(urllib.error.URLError) as untrusted:
        request(f"{base}/api", context=ssl.create_default_context())  # trusted only by whoever is given the CA
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    plain = base.replace("https://", "http://")
    with pytest.raises((http.client.HTTPException, ConnectionError, urllib.error.URLError)):
        request(f"{plain}/api")  # no HTTP answer at all on the TLS port
    health = healthcheck(docker, name)
    assert "over https" in health.stdout
    logs = docker.logs(name)
    assert f"HTTPS with the certificate {TLS_DIR}/tls.crt" in logs
    assert token not in logs


def test_without_a_tls_secret_it_says_plain_http_is_for_loopback(docker):
    name, _base = serve(docker, env={"JUPYTER_TOKEN": secrets.token_hex(24)})
    assert "plain HTTP (PRIMAGE_JUPYTER_TLS_DIR not set): publish the port on loopback only" in docker.logs(name)


@pytest.mark.parametrize("fault", ["mismatched", "missing key", "not pem"])
def test_a_broken_tls_pair_is_refused_at_start_with_one_line(docker, tmp_path, fault):
    certificates = tls.loopback_certificates(tmp_path / "ca", "primage test notebook CA")
    other = tls.loopback_certificates(tmp_path / "other", "another CA")
    folder = tls_folder(tmp_path, certificates, key=other.key if fault == "mismatched" else None)
    if fault == "missing key":
        (folder / "tls.key").unlink()
    if fault == "not pem":
        (folder / "tls.crt").write_text("not a certificate\n")
    result = docker.run(
        env={"JUPYTER_TOKEN": secrets.token_hex(24), "PRIMAGE_JUPYTER_TLS_DIR": TLS_DIR},
        volumes=[(folder, TLS_DIR, "ro")],
        timeout=60,
    )
    assert result.returncode == 64, result.stdout + result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    expected = "holds no tls.key" if fault == "missing key" else "are not a PEM certificate and its private key"
    assert lines[0].startswith(f"start: PRIMAGE_JUPYTER_TLS_DIR ({TLS_DIR})")
    assert expected in lines[0]
    assert "PRIVATE KEY" not in lines[0]


def test_a_token_from_the_environment_leaves_the_servers_environment(docker):
    token = secrets.token_hex(24)
    name, base = serve(docker, env={"JUPYTER_TOKEN": token})
    assert request(f"{base}/api/contents") == 403
    assert request(f"{base}/api/contents", token=token) == 200
    assert token not in docker.logs(name)
    assert token not in command_lines(docker, name)
    environments = subprocess.run(
        [
            "docker",
            "exec",
            name,
            "sh",
            "-c",
            # The server's pid names its runtime file (the shell running this has the container's env).
            "for f in $HOME/.local/share/jupyter/runtime/jpserver-*.json; do p=${f##*jpserver-};"
            " tr '\\0' '\\n' < /proc/${p%.json}/environ; done",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "PRIMAGE_JUPYTER_TOKEN_PATH=" in environments.stdout, "the server process was found"
    assert token not in environments.stdout, "kernels inherit no token"


def test_without_a_token_one_is_generated_on_the_home_volume_and_kept(docker):
    home = docker.volume()
    name, base = serve(docker, volumes=[(home, HOME)])
    facts = subprocess.run(
        ["docker", "exec", name, "stat", "-c", "%a %u", TOKEN_HOME_FILE], capture_output=True, text=True, check=True
    )
    assert facts.stdout.split() == ["600", str(APP_UID)]
    token = subprocess.run(
        ["docker", "exec", name, "cat", TOKEN_HOME_FILE], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert len(token) == 48
    assert request(f"{base}/api/contents", token=token) == 200
    assert token not in docker.logs(name)
    docker.remove(name)
    _again, base = serve(docker, volumes=[(home, HOME)])
    assert request(f"{base}/api/contents", token=token) == 200, "the same token after a restart"


@pytest.mark.parametrize("value", ["", "tooshort"], ids=["empty", "short"])
def test_an_empty_or_short_token_is_refused_at_start(docker, value):
    result = docker.run(env={"JUPYTER_TOKEN": value}, timeout=60)
    assert result.returncode == 64
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("start: JUPYTER_TOKEN")
    if value:
        assert value not in lines[0]


def test_the_example_notebook_runs_headless_and_saves_its_figure_to_the_space(docker, space):
    (space / "inputs").mkdir()
    (space / "inputs").chmod(0o777)
    made = docker.run("python3", "-c", MAKE_VOLUME, volumes=[(space, MOUNT)])
    assert made.returncode == 0, made.stderr
    executed = docker.run(
        "python3", "-c", RUN_EXAMPLE, volumes=[(space, MOUNT)], options=["--network", "none"], timeout=600
    )
    assert executed.returncode == 0, executed.stderr
    assert f"volume: {MOUNT}/inputs/brain.nii.gz" in executed.stdout
    figure = space / "figures" / "brain-filtered.png"
    assert figure.is_file(), executed.stdout
    data = figure.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 750)
    assert not any(p.name.startswith(".") for p in figure.parent.iterdir()), "no temporary file left"
    contrast = docker.run(
        "python3", "-c", FIGURE_CONTRAST, f"{MOUNT}/figures/brain-filtered.png", volumes=[(space, MOUNT, "ro")]
    )
    assert float(contrast.stdout) > 20, "the figure shows something, not a blank page"
