"""The registry password is on no command line and in no world-readable file or log."""

from conftest import ownership

SEARCH = (
    "find / \\( -path /proc -o -path /sys -o -path /dev -o -path %s \\) -prune -o "
    "-type f -perm -o+r -size -64M -print0 | xargs -0 -r grep -lF -f %s"
)


def test_no_password_on_any_command_line(host, client, local_image):
    # Fixtures ran skopeo login and built the image; the registry runs. Scan every process.
    result = host.run("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -cF -f %s", client["password_file"])
    assert result.stdout.strip() == "0", "the password appears on a process command line"


def test_no_password_in_world_readable_files(host, client):
    result = host.run(SEARCH, client["dir"], client["password_file"])
    assert result.stdout.strip() == "", f"world-readable files containing the password: {result.stdout}"


def test_no_password_in_the_journal(host, client):
    result = host.run("journalctl -b --no-pager -o cat | grep -cF -f %s", client["password_file"])
    assert result.stdout.strip() == "0"


def test_client_material_is_private(host, client):
    # Sanity check of the fixture itself: the file the searches use is not world-readable.
    assert ownership(host, client["password_file"]) == ("root", "root", 0o600)
    assert host.file(client["password_file"]).size > 0
