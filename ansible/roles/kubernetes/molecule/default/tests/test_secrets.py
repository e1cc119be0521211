"""The bootstrap token is on no command line and in no world-readable file, on either node."""

import os
import subprocess
import tempfile

import pytest

PATTERN = "/root/.primage-token-pattern"
SEARCH_ROOTS = "/etc /var /root /home /tmp /run /srv /opt /usr/local"


@pytest.fixture(scope="module")
def token(join_config) -> str:
    return join_config["discovery"]["bootstrapToken"]["token"]


@pytest.fixture
def pattern_on(token):
    """Put the token into a root-only file in a node with `docker cp`, so that no command line carries it."""
    placed = []

    def place(host):
        name = host.backend.name
        with tempfile.NamedTemporaryFile("w", delete=False) as handle:
            os.chmod(handle.name, 0o600)
            handle.write(token + "\n")
        try:
            subprocess.run(["docker", "cp", handle.name, f"{name}:{PATTERN}"], check=True, capture_output=True)
        finally:
            os.unlink(handle.name)
        host.run(f"chmod 0600 {PATTERN}")
        placed.append(host)
        return PATTERN

    yield place
    for host in placed:
        host.run(f"rm -f {PATTERN}")


def world_readable_files_with(host, pattern: str) -> list[str]:
    result = host.run(
        f"find {SEARCH_ROOTS} -xdev -type f -perm -o+r ! -path {pattern} -print0 2>/dev/null"
        f" | xargs -0 -r grep -lsF -f {pattern}"
    )
    return result.stdout.split()


def test_token_is_where_it_belongs(worker, pattern_on):
    """The search works: it finds the token in the root-only join configuration."""
    pattern = pattern_on(worker)
    found = worker.run(f"grep -lsF -f {pattern} /etc/kubernetes/kubeadm/kubeadm-join.yaml").stdout.split()
    assert found == ["/etc/kubernetes/kubeadm/kubeadm-join.yaml"]


@pytest.mark.parametrize("name", ["control_plane", "worker"])
def test_token_in_no_process_command_line(request, pattern_on, name):
    host = request.getfixturevalue(name)
    pattern = pattern_on(host)
    hits = host.run(f"grep -alF -f {pattern} /proc/[0-9]*/cmdline").stdout.split()
    assert hits == []


@pytest.mark.parametrize("name", ["control_plane", "worker"])
def test_token_in_no_world_readable_file(request, pattern_on, name):
    host = request.getfixturevalue(name)
    assert world_readable_files_with(host, pattern_on(host)) == []


def test_admin_credentials_are_not_world_readable(control_plane):
    for path in ("/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/ca.key", "/home/cloudadm/.kube/config"):
        assert control_plane.file(path).mode & 0o077 == 0, path
