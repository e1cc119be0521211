"""Swap off and kept off, kernel modules and sysctls persisted (containers: files only)."""

import re


def test_kernel_modules_persisted(node):
    conf = node.file("/etc/modules-load.d/kubernetes.conf")
    assert conf.mode == 0o644
    modules = [line for line in conf.content_string.splitlines() if line and not line.startswith("#")]
    assert modules == ["overlay", "br_netfilter"]


def test_sysctls_persisted(node):
    conf = node.file("/etc/sysctl.d/99-kubernetes.conf")
    assert conf.mode == 0o644
    values = dict(re.findall(r"^([\w.-]+)\s*=\s*(\S+)$", conf.content_string, flags=re.M))
    assert values == {
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.bridge.bridge-nf-call-ip6tables": "1",
        "net.ipv4.ip_forward": "1",
    }


def test_sysctl_file_is_accepted_by_sysctl(node):
    """Every line parses (keys the container cannot set are reported, not syntax errors)."""
    result = node.run("sysctl -p /etc/sysctl.d/99-kubernetes.conf")
    assert "syntax" not in result.stderr.lower()


def test_swap_kept_off_at_boot(node):
    assert node.file("/etc/systemd/system/swap.target").linked_to == "/dev/null"
    for line in node.file("/etc/fstab").content_string.splitlines():
        fields = line.split()
        assert line.lstrip().startswith("#") or len(fields) < 3 or fields[2] != "swap", line


def test_no_swap_active(node):
    assert node.check_output("swapon --show --noheadings") == ""
