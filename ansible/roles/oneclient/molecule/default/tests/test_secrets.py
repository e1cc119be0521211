"""The token lives only in the root-only environment file and the mount process's environment:
never on a command line, in the journal, or in a world-readable file."""

from conftest import ENV_FILE, UNIT, main_pid, wait_for

# Searches the files for the token without putting it on any command line: grep reads
# the pattern from a root-only file cut out of the environment file itself.
_FIND_WORLD_READABLE_WITH_TOKEN = rf"""
set -u
umask 077
pattern=$(mktemp /run/oneclient-token-pattern.XXXXXX)
sed -n 's/^ONECLIENT_ACCESS_TOKEN=//p' {ENV_FILE} > "$pattern"
grep -qF -f "$pattern" {ENV_FILE} && [ -s "$pattern" ] && echo SELFCHECK-OK
find /etc /var/log /tmp -xdev -type f -perm -o=r -print0 2>/dev/null \
  | xargs -0 -r grep -lF -f "$pattern" 2>/dev/null
rm -f "$pattern"
"""


def test_environment_file_root_only_and_holds_credentials(host, test_vars, token):
    env_file = host.file(ENV_FILE)
    assert env_file.is_file
    assert env_file.user == "root"
    assert env_file.group == "root"
    assert env_file.mode == 0o600
    lines = env_file.content_string.splitlines()
    assert f"ONECLIENT_ACCESS_TOKEN={token}" in lines
    assert f"ONECLIENT_PROVIDER_HOST={test_vars['oneclient_test_provider']}" in lines
    config_dir = host.file("/etc/oneclient")
    assert config_dir.user == "root"
    assert config_dir.mode == 0o700


def test_token_reaches_the_mount_process_through_its_environment(host, token):
    pid = wait_for(lambda: main_pid(host), timeout=20)
    assert pid
    environ = host.file(f"/proc/{pid}/environ").content_string.split("\0")
    assert f"ONECLIENT_ACCESS_TOKEN={token}" in environ


def test_token_on_no_command_line(host, token):
    assert wait_for(lambda: main_pid(host), timeout=20)
    cmdlines = host.check_output("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done")
    assert "/usr/bin/oneclient" in cmdlines or "bindfs" in cmdlines  # the mount process is there
    assert token not in cmdlines


def test_token_not_in_journal(host, token):
    unit_log = host.check_output(f"journalctl --no-pager -u {UNIT}")
    assert "oneclient (stub): provider" in unit_log  # the unit did log
    full = host.check_output("journalctl --no-pager -o verbose")
    assert token not in full


def test_token_in_no_world_readable_file(host):
    output = host.check_output(_FIND_WORLD_READABLE_WITH_TOKEN).splitlines()
    assert "SELFCHECK-OK" in output, "the search could not read the token pattern"
    leaks = [line for line in output if line and line != "SELFCHECK-OK"]
    assert leaks == []
