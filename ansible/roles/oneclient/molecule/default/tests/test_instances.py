"""A second mount from a second role invocation (instance "scratch") runs beside the first,
with the mount command replaced by plain bindfs (oneclient_mount_command)."""

from conftest import UNIT, mount_entry, wait_for

SCRATCH_UNIT = "oneclient-scratch.service"


def test_second_unit_enabled_and_active(host):
    service = host.service(SCRATCH_UNIT)
    assert service.is_enabled
    assert wait_for(lambda: service.is_running, timeout=20)
    assert host.service(UNIT).is_running


def test_second_unit_runs_the_configured_command(host, test_vars):
    unit = host.file(f"/etc/systemd/system/{SCRATCH_UNIT}").content_string
    source = test_vars["oneclient_test_scratch_source"]
    mount_point = test_vars["oneclient_test_scratch_mount_point"]
    assert f'ExecStart="/usr/bin/bindfs" "-f" "-o" "allow_other" "{source}" "{mount_point}"' in unit
    assert "EnvironmentFile=/etc/oneclient/scratch.env" in unit


def test_second_environment_file_root_only(host, token):
    env_file = host.file("/etc/oneclient/scratch.env")
    assert env_file.user == "root"
    assert env_file.mode == 0o600
    assert f"ONECLIENT_ACCESS_TOKEN={token}" in env_file.content_string.splitlines()


def test_second_space_mounted(host, test_vars):
    mount_point = test_vars["oneclient_test_scratch_mount_point"]
    entry = wait_for(lambda: mount_entry(host, mount_point), timeout=20)
    assert entry, "second mount point not in /proc/mounts"
    assert entry[0] == test_vars["oneclient_test_scratch_source"]
    assert "allow_other" in entry[3].split(",")
    host.check_output(f"echo second > {test_vars['oneclient_test_scratch_source']}/probe")
    assert host.file(f"{mount_point}/probe").content_string.strip() == "second"
