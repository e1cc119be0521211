"""The unit is enabled and active, and the space is mounted through it with allow_other."""

import uuid

from conftest import UNIT, mount_entry, wait_for


def test_unit_enabled_and_active(host):
    service = host.service(UNIT)
    assert service.is_enabled
    assert wait_for(lambda: service.is_running, timeout=20)


def test_unit_takes_credentials_from_the_environment_file(host):
    unit = host.file(f"/etc/systemd/system/{UNIT}").content_string
    assert "EnvironmentFile=/etc/oneclient/default.env" in unit
    assert "ACCESS_TOKEN" not in unit
    expected = '"/usr/bin/oneclient" "--foreground" "--opt" "allow_other" "--space=MedicalImaging" "/mnt/onedata"'
    assert f"ExecStart={expected}" in unit


def test_space_mounted_with_allow_other(host, test_vars):
    entry = wait_for(lambda: mount_entry(host, test_vars["oneclient_test_mount_point"]), timeout=20)
    assert entry, "mount point not in /proc/mounts"
    assert entry[2].startswith("fuse")
    assert "allow_other" in entry[3].split(",")


def test_backing_file_visible_through_mount(host, test_vars):
    name = f"probe-{uuid.uuid4().hex}.txt"
    space = test_vars["oneclient_test_space"]
    backing = f"{test_vars['oneclient_test_backing_dir']}/{space}/{name}"
    seen = f"{test_vars['oneclient_test_mount_point']}/{space}/{name}"
    host.check_output(f"echo through-the-mount > {backing}")
    try:
        assert host.file(seen).content_string.strip() == "through-the-mount"
    finally:
        host.run(f"rm -f {backing}")
