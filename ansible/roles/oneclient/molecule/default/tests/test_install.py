"""oneclient comes from the configured (mirror) repository, signed, at the pinned version."""

PINNED = "21.02.7-1~jammy"


def test_package_installed_at_pinned_version(host):
    package = host.package("oneclient")
    assert package.is_installed
    assert package.version == PINNED


def test_package_is_held(host):
    assert host.check_output("dpkg-query -W -f '${Status}' oneclient").startswith("hold ")


def test_package_came_from_the_signed_source(host, test_vars):
    policy = host.check_output("apt-cache policy oneclient")
    assert f"file:{test_vars['oneclient_test_repo_dir']}" in policy
    source = host.file("/etc/apt/sources.list.d/onedata.sources")
    assert source.mode == 0o644
    assert "Signed-By: /etc/apt/keyrings/onedata.asc" in source.content_string
    assert f"URIs: file://{test_vars['oneclient_test_repo_dir']}" in source.content_string
    key = host.file("/etc/apt/keyrings/onedata.asc")
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_stub_binary_is_the_mount_program(host):
    assert host.file("/usr/bin/oneclient").mode & 0o111
    assert "stub" in host.check_output("/usr/bin/oneclient --version")
