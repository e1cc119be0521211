"""The Kubernetes apt source points at the configured mirror and is signed-by its key."""

import re


def test_source_uses_the_mirror_and_signed_by(node, scenario_vars):
    source = node.file("/etc/apt/sources.list.d/kubernetes.sources")
    assert source.mode == 0o644
    fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", source.content_string, flags=re.M))
    assert fields["URIs"] == scenario_vars["kubernetes_apt_repository_url"]
    assert fields["Suites"] == "/"
    assert fields["Signed-By"] == "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
    assert "Components" not in fields


def test_signing_key_is_the_mirror_key(node):
    key = node.file("/etc/apt/keyrings/kubernetes-apt-keyring.asc")
    assert key.mode == 0o644
    assert key.content_string == node.file("/srv/stub-apt-repo/archive-key.asc").content_string
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_no_unsigned_or_trusted_override(node):
    sources = node.check_output("cat /etc/apt/sources.list.d/*.sources")
    assert "Trusted: yes" not in sources
    assert "trusted=yes" not in node.check_output(
        "cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true"
    )
