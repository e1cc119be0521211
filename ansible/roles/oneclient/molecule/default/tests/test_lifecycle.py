"""Restart after kill -9 (stale FUSE mount cleared), clean unmount on stop, start again.

The tests run in file order and leave the unit started."""

from conftest import UNIT, main_pid, mount_entry, wait_for


def _mounted_and_readable(host, test_vars):
    mount_point = test_vars["oneclient_test_mount_point"]
    if mount_entry(host, mount_point) is None:
        return False
    return host.run(f"ls {mount_point}/{test_vars['oneclient_test_space']}").rc == 0


def test_restarts_after_kill_9(host, test_vars):
    assert wait_for(lambda: _mounted_and_readable(host, test_vars), timeout=20)
    old_pid = main_pid(host)
    assert old_pid > 0
    host.check_output(f"kill -9 {old_pid}")

    def restarted():
        pid = main_pid(host)
        return pid not in (0, old_pid) and _mounted_and_readable(host, test_vars)

    assert wait_for(restarted, timeout=30), "systemd did not bring the mount back after kill -9"
    assert host.service(UNIT).is_running
    # Exactly one mount: the stale one was cleared, not stacked under the new one.
    mounts = host.file("/proc/mounts").content_string.splitlines()
    assert sum(1 for line in mounts if line.split()[1] == test_vars["oneclient_test_mount_point"]) == 1


def test_stop_unmounts(host, test_vars):
    host.check_output(f"systemctl stop {UNIT}")
    assert not host.service(UNIT).is_running
    assert mount_entry(host, test_vars["oneclient_test_mount_point"]) is None


def test_start_again_mounts(host, test_vars):
    host.check_output(f"systemctl start {UNIT}")
    assert wait_for(lambda: _mounted_and_readable(host, test_vars), timeout=20)
    assert host.service(UNIT).is_running
