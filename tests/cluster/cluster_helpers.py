"""Helpers of the cluster tests: the host before and after (kubectl with waits: tests/support/cluster_verify.py)."""

from __future__ import annotations

import os
import re
import subprocess

from primage import paths
from primage.cluster import host

# --------------------------------------------------------------------------- the host, before and after


# Where the cluster's mounts can appear (its own folders, the kubelet's and containerd's fixed
# paths, cgroups); other engineers' test mounts under /tmp or /work are not the cluster's.
CLUSTER_MOUNT_AREAS = ("/var/", "/run/", "/etc/", "/opt/", "/usr/", "/sys/fs/cgroup", str(paths.cache_dir()))
DOCKER_MOUNTS = ("/var/lib/docker", "/run/docker", "/var/run/docker")
# Docker's own chains and bridges, and the hairpin MASQUERADE rule it adds to POSTROUTING for
# each published port of a container (source and destination the container's address), which
# names neither: other users of the shared engine start and stop containers during the tests.
DOCKER_NOISE = re.compile(
    r"DOCKER|docker|\bbr-[0-9a-f]{12}\b|^-A POSTROUTING -s (\S+)/32 -d \1/32 -p \w+ -m \w+ --dport \d+ -j MASQUERADE$"
)


def host_snapshot() -> dict:
    """What the cluster may change on the host, leaving out what the shared Docker engine changes."""
    rules = {}
    for family in host.IPTABLES_FAMILIES:
        for table in host.IPTABLES_TABLES:
            text = subprocess.run([f"{family}-save", "-t", table], capture_output=True, text=True).stdout
            lines = [re.sub(r"\[\d+:\d+\]", "", line).strip() for line in text.splitlines()]
            rules[f"{family}/{table}"] = sorted(
                line for line in lines if line and line[0] in ":-" and not DOCKER_NOISE.search(line)
            )
    interfaces = sorted(name for name in os.listdir("/sys/class/net") if not name.startswith(("veth", "br-", "docker")))
    with open("/proc/self/mountinfo") as mountinfo:
        mounts = sorted(
            point
            for point in (line.split()[4] for line in mountinfo)
            if point.startswith(CLUSTER_MOUNT_AREAS) and not point.startswith(DOCKER_MOUNTS)
        )
    return {
        "sysctls": host.read_sysctls(),
        "iptables": rules,
        "folders": host.existing_folders(),
        "interfaces": interfaces,
        "mounts": mounts,
        "cgroups": [str(h / "primage-cluster") for h in host.cgroup_hierarchies() if (h / "primage-cluster").exists()],
        "top-level": {
            folder: sorted(os.listdir(folder)) for folder in ("/etc", "/opt", "/var/lib", "/var/log", "/usr/libexec")
        },
    }


def differences(before: dict, after: dict) -> list[str]:
    """What changed, item by item (lists compared as multisets: added and removed entries)."""
    found = []
    for key, old in before.items():
        new = after.get(key)
        if isinstance(old, dict):
            found.extend(
                differences({f"{key}/{k}": v for k, v in old.items()}, {f"{key}/{k}": v for k, v in new.items()})
            )
        elif isinstance(old, list) and isinstance(new, list):
            added = [item for item in new if new.count(item) > old.count(item)]
            removed = [item for item in old if old.count(item) > new.count(item)]
            if added or removed:
                found.append(f"{key}: added {sorted(set(added))}, removed {sorted(set(removed))}")
        elif old != new:
            found.append(f"{key}: {old!r} -> {new!r}")
    return found
