"""Every Onedata variant from outside (its test build: the stub oneclient of the oneclient role's
scenario, from the signed repository the pipeline serves to the build), run as the roles' pod
mode runs it (tests/support/onedata_pod.py reads the security context, the environment and the
volumes from the rendered workload): the space mounted through FUSE with SYS_ADMIN and the device
(never privileged), the application as its user without a capability, the token only in
oneclient, signals forwarded, the space unmounted at the end, and one clear line with its own
exit code for every missing piece. Tests of one application's variant are in its sub-folder."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import image_config
from support.onedata_pod import (
    APP_GID,
    APP_UID,
    EX_CONFIG,
    EX_FUSE,
    EX_ONECLIENT,
    EX_PRIVILEGES,
    EX_TIMEOUT,
    STUB_BACKING,
    application_pod,
    fuse_mounts,
    given,
    host_processes,
    new_token,
    stub_options,
)

pytestmark = pytest.mark.engine

SHARE = "/usr/local/share/primage-onedata"
# What the probe command prints, as the application: who it is, what it may do, what it sees.
PROBE = r"""
set -eu
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -d '\t'
grep " $ONECLIENT_MOUNT_POINT " /proc/self/mountinfo | sed 's/.* - \([^ ]*\) .*/fstype=\1/'
cat "$ONECLIENT_MOUNT_POINT/inputs/hello.txt"
mkdir -p "$ONECLIENT_MOUNT_POINT/outputs/probe"
echo "written through the mount" > "$ONECLIENT_MOUNT_POINT/outputs/probe/.result.tmp"
mv "$ONECLIENT_MOUNT_POINT/outputs/probe/.result.tmp" "$ONECLIENT_MOUNT_POINT/outputs/probe/result.txt"
"""
# As the application: is the token anywhere it can read (environment, files, other processes)?
# (This shell itself is `docker exec`'s: it has the container's configured environment, token
# included, as `kubectl exec` would; it is not the application's, so it is left out.)
SNOOP = r"""
unset ONECLIENT_ACCESS_TOKEN
for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] || cat "$p/environ" 2>/dev/null | tr '\0' '\n'; done
grep -rIh -- "$1" /tmp /home /etc /run /usr/local "$ONECLIENT_MOUNT_POINT" 2>/dev/null
cat /proc/1/environ >/dev/null 2>&1 && echo "PID 1 environment readable" || echo "PID 1 environment unreadable"
ls -ld /tmp/primage-onedata.* /tmp/oneclient | awk '{ print "state " $1 " " $3 }'
stat -c 'tmp %A' /tmp
true
"""


@pytest.fixture(scope="module")
def application() -> str:
    return given("PRIMAGE_TEST_APPLICATION")


@pytest.fixture(scope="module")
def application_image() -> str:
    return given("PRIMAGE_TEST_APPLICATION_IMAGE")


@pytest.fixture
def space(tmp_path) -> Path:
    """The folder standing in for the space, owned by root as the host made it."""
    folder = tmp_path / "space"
    (folder / "inputs").mkdir(parents=True)
    (folder / "inputs" / "hello.txt").write_text("hello from the space\n")
    return folder


@pytest.fixture
def token() -> str:
    return new_token()


@pytest.fixture
def pod(application, application_image, image, token):
    return application_pod(application, application_image, image, token)


def options(pod, tmp_path, space, **env) -> list[str]:
    return [*pod.run_options(tmp_path, {**stub_options(), **env}), "-v", f"{space}:{STUB_BACKING}"]


def lines(result) -> list[str]:
    return (result.stdout + result.stderr).strip().splitlines()


def test_the_variant_is_its_application_with_oneclient_on_top(image, application_image, docker):
    variant, app = image_config(image), image_config(application_image)
    assert image.startswith(application_image + "-onedata"), "tagged <application tag>-onedata[-test]"
    assert variant["RootFS"]["Layers"][: len(app["RootFS"]["Layers"])] == app["RootFS"]["Layers"]
    assert variant["Config"]["User"] == "0:0"
    assert variant["Config"]["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/sbin/primage-onedata"]
    labels = variant["Config"]["Labels"]
    assert labels["org.primage.onedata.oneclient"] == "oneclient=21.02.7-1~jammy"
    assert labels["org.primage.test-build"].startswith("stub packages (oneclient)")
    assert variant["Size"] - app["Size"] < 20e6, "the layer adds oneclient (here its stub) and little else"
    # The application's own command and user, recorded from its image (its ENTRYPOINT was tini).
    assert app["Config"]["Entrypoint"] == ["/usr/bin/tini", "--"]
    recorded = docker.run(
        "-c", f"tr '\\0' ' ' < {SHARE}/cmd; echo; cat {SHARE}/user", options=["--entrypoint", "/bin/sh"]
    )
    assert recorded.returncode == 0, recorded.stderr
    command, user = recorded.stdout.splitlines()
    assert command.split() == app["Config"]["Cmd"]
    assert user == app["Config"]["User"]


def test_it_mounts_the_space_through_fuse_and_runs_the_application_as_its_user(pod, docker, tmp_path, space):
    result = docker.run("sh", "-c", PROBE, options=options(pod, tmp_path, space))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith(f"uid={APP_UID} gid={APP_GID} groups=")
    assert "0" not in out[0].split("groups=")[1].split(), "root's group is not kept"
    assert "CapEff:0000000000000000" in out, "no capability left to the application"
    assert "NoNewPrivs:1" in out, "nor a way to regain one"
    assert "fstype=fuse" in out, "the mount point is a FUSE mount"
    assert "hello from the space" in out
    assert (space / "outputs" / "probe" / "result.txt").read_text() == "written through the mount\n"
    log = result.stderr
    assert "primage-onedata: the space answers at /mnt/onedata" in log
    assert "primage-onedata: unmounted the space from /mnt/onedata" in log
    assert "oneclient (stub): provider plg-cyfronet-01.datahub.egi.eu" in log, "the stub oneclient mounted it"


def test_the_token_reaches_oneclient_and_nothing_else(pod, docker, tmp_path, space, token):
    name = docker.start("sleep", "60", options=options(pod, tmp_path, space))
    deadline = time.monotonic() + 30
    while not [p for p in host_processes(name) if p["uid"] == APP_UID]:
        assert time.monotonic() < deadline, docker.logs(name)
        time.sleep(0.2)
    processes = host_processes(name)
    application = [p for p in processes if p["uid"] == APP_UID]
    assert [p["argv"] for p in application] == [["sleep", "60"]]
    assert not [p for p in application if any(token in e for e in p["environ"])], "the application's env"
    assert not [p for p in processes if any(token in a for a in p["argv"])], "a command line"
    holders = [p for p in processes if f"ONECLIENT_ACCESS_TOKEN={token}" in p["environ"]]
    assert holders, "oneclient got the token"
    assert {p["uid"] for p in holders} == {0}
    oneclient = [p for p in processes if p["argv"][:1] == ["bindfs"]]
    assert oneclient, "the stub oneclient runs bindfs"
    assert oneclient[0] in holders
    snooped = subprocess.run(
        ["docker", "exec", "--user", f"{APP_UID}:{APP_GID}", name, "sh", "-c", SNOOP, "snoop", token],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert token not in snooped, "readable by the application's user"
    assert "PID 1 environment unreadable" in snooped
    states = [line for line in snooped.splitlines() if line.startswith("state ")]
    assert len(states) == 2
    for state in states:  # (S: the set-group-id bit an emptyDir's folders pass on, with fsGroup)
        assert re.fullmatch(r"state drwx--[-S]--- root", state), "oneclient's state and logs are root's only"
    assert re.search(r"^tmp drwxrw[xs]rwt$", snooped, re.M), "the emptyDir /tmp made sticky: root's folders stay put"
    assert token not in docker.logs(name)


def test_a_token_file_keeps_the_token_out_of_the_container_config(pod, docker, tmp_path, space, token):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "token").write_text(token + "\n")
    (secret / "token").chmod(0o400)
    pod.env.pop("ONECLIENT_ACCESS_TOKEN")
    run_options = options(pod, tmp_path, space, ONECLIENT_ACCESS_TOKEN_FILE="/run/secrets/onedata/token")  # noqa: S106
    name = docker.start("sh", "-c", PROBE, options=[*run_options, "-v", f"{secret}:/run/secrets/onedata:ro"])
    subprocess.run(["docker", "wait", name], capture_output=True, check=True)
    assert docker.state(name)["ExitCode"] == 0, docker.logs(name)
    inspected = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True).stdout
    assert token not in inspected
    assert token not in docker.logs(name)
    assert (space / "outputs" / "probe" / "result.txt").exists()


def test_stop_reaches_the_application_then_the_space_is_unmounted(pod, docker, tmp_path, space):
    waits = "trap 'echo application stopped by TERM; exit 143' TERM; echo ready; while :; do sleep 0.1; done"
    name = docker.start("sh", "-c", waits, options=options(pod, tmp_path, space))
    deadline = time.monotonic() + 30
    while "ready" not in docker.logs(name):
        assert docker.state(name)["Running"], docker.logs(name)
        assert time.monotonic() < deadline, docker.logs(name)
        time.sleep(0.2)
    assert fuse_mounts(name) == [pod.mount_point]
    (server,) = [p["pid"] for p in host_processes(name) if p["argv"][:1] == ["bindfs"]]
    subprocess.run(["docker", "stop", "--time", "20", name], capture_output=True, check=True)
    state, log = docker.state(name), docker.logs(name)
    assert state["ExitCode"] == 143, log
    # The application stopped first, then the space was unmounted, then the FUSE server ended on
    # its own (the stub exits 0 only once unmounted), before the engine's kill after 20 s.
    assert log.index("application stopped by TERM") < log.index("primage-onedata: unmounted the space")
    assert "primage-onedata: oneclient ended with status 0" in log
    assert not Path(f"/proc/{server}").exists()


def test_the_application_exit_status_is_the_containers(pod, docker, tmp_path, space):
    result = docker.run("sh", "-c", "exit 65", options=options(pod, tmp_path, space))
    assert result.returncode == 65
    assert "primage-onedata: unmounted the space from /mnt/onedata" in result.stderr


MISSING = {
    "no SYS_ADMIN": (
        {"drop": ["--cap-add=SYS_ADMIN"]},
        EX_PRIVILEGES,
        "primage-onedata: missing capability SYS_ADMIN: mounting the space needs SYS_ADMIN",
    ),
    "no SETUID and SETGID": (
        {"drop": ["--cap-add=SETUID", "--cap-add=SETGID"]},
        EX_PRIVILEGES,
        "primage-onedata: missing capability SETUID SETGID",
    ),
    "no FUSE device": (
        {"drop": ["--device"]},
        EX_FUSE,
        "primage-onedata: missing FUSE device /dev/fuse: docker run --device /dev/fuse",
    ),
    "a hostPath /dev/fuse": (
        {"drop": ["--device"], "add": ["-v", "/dev/fuse:/dev/fuse"]},
        EX_FUSE,
        "primage-onedata: cannot open the FUSE device /dev/fuse (Operation not permitted): the container's "
        "device cgroup does not grant it",
    ),
    "not root": (
        {"add": ["--user", f"{APP_UID}:{APP_GID}"]},
        EX_PRIVILEGES,
        f"primage-onedata: runs as uid {APP_UID}, but it must start as root",
    ),
}


@pytest.mark.parametrize(("change", "code", "message"), MISSING.values(), ids=MISSING.keys())
def test_what_is_missing_is_one_line_and_its_own_exit_code(pod, docker, tmp_path, space, change, code, message):
    run_options = options(pod, tmp_path, space)
    for dropped in change.get("drop", []):
        index = run_options.index(dropped)
        del run_options[index : index + (2 if dropped == "--device" else 1)]
    result = docker.run("sh", "-c", "echo the application ran", options=[*run_options, *change.get("add", [])])
    assert result.returncode == code, lines(result)
    assert len(lines(result)) == 1, lines(result)
    assert lines(result)[0].startswith(message)
    assert "--privileged" not in run_options


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ONECLIENT_PROVIDER_HOST": ""}, "primage-onedata: ONECLIENT_PROVIDER_HOST is not set"),
        ({"ONECLIENT_ACCESS_TOKEN": ""}, "primage-onedata: no access token: set ONECLIENT_ACCESS_TOKEN"),
        ({"ONECLIENT_MOUNT_POINT": "relative/path"}, "primage-onedata: ONECLIENT_MOUNT_POINT 'relative/path' is not"),
        ({"PRIMAGE_UID": "0"}, "primage-onedata: PRIMAGE_UID is 0: the application would run as root"),
        ({"PRIMAGE_ONEDATA_OPTIONS": "--token x"}, "primage-onedata: PRIMAGE_ONEDATA_OPTIONS holds --token"),
    ],
    ids=["no provider", "no token", "relative mount point", "root", "token option"],
)
def test_a_wrong_setting_is_one_line_naming_it(pod, docker, tmp_path, space, env, message):
    result = docker.run("true", options=options(pod, tmp_path, space, **env))
    assert result.returncode == EX_CONFIG, lines(result)
    assert lines(result) == [lines(result)[0]]
    assert lines(result)[0].startswith(message)


def test_oneclient_failing_hanging_or_dying_has_its_own_exit_code(pod, docker, tmp_path, space):
    failing = docker.run("true", options=options(pod, tmp_path, space, PRIMAGE_ONEDATA_OPTIONS="--no-such-option"))
    assert failing.returncode == EX_ONECLIENT, failing.stderr
    assert "primage-onedata: oneclient exited with status 2 before the space was mounted" in failing.stderr
    hanging = tmp_path / "oneclient"
    hanging.write_text("#!/bin/sh\necho 'oneclient (hanging stand-in): connecting...' >&2\nexec sleep 600\n")
    hanging.chmod(0o755)
    slow = docker.run(
        "true",
        options=[
            *options(pod, tmp_path, space, PRIMAGE_ONEDATA_MOUNT_TIMEOUT="2"),
            "-v",
            f"{hanging}:/usr/bin/oneclient:ro",
        ],
    )
    assert slow.returncode == EX_TIMEOUT, slow.stderr
    assert "primage-onedata: the space did not answer at /mnt/onedata within 2 s" in slow.stderr
    name = docker.start("sh", "-c", "echo ready; sleep 60", options=options(pod, tmp_path, space))
    deadline = time.monotonic() + 30
    while "ready" not in docker.logs(name):
        assert time.monotonic() < deadline, docker.logs(name)
        time.sleep(0.2)
    (bindfs,) = [p for p in host_processes(name) if p["argv"][:1] == ["bindfs"]]
    subprocess.run(["kill", "-KILL", str(bindfs["pid"])], check=True)
    subprocess.run(["docker", "wait", name], capture_output=True, check=True, timeout=60)
    assert docker.state(name)["ExitCode"] == EX_ONECLIENT
    assert "oneclient exited with status 137 while the application ran" in docker.logs(name)


def test_the_pod_contract_is_the_rendered_workloads(pod):
    """What these tests grant is what the roles render: no more (never privileged), no less."""
    context = pod.container["securityContext"]
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID"]}
    assert "--read-only" in pod.options
    assert json.dumps(pod.container).count("/dev/fuse") == 0, "no hostPath /dev/fuse in the pod"
