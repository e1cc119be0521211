"""FUSE is set up: fuse3 installed and user_allow_other enabled."""


def test_fuse3_installed(host):
    assert host.package("fuse3").is_installed
    assert host.exists("fusermount3")


def test_user_allow_other(host):
    fuse_conf = host.file("/etc/fuse.conf")
    lines = [line.strip() for line in fuse_conf.content_string.splitlines()]
    assert "user_allow_other" in lines
    assert fuse_conf.mode == 0o644
