"""Bringing the cluster up and down: clear refusals, and the host exactly as it was after `down`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest
from cluster_helpers import differences, host_snapshot

from primage import cluster
from primage.cluster import host

pytestmark = pytest.mark.cluster


def test_a_missing_binary_names_the_build_command(built, primage, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path / "empty-cache"))
    run = primage("cluster", "up")
    assert run.code == 1
    assert "not built: kube-apiserver" in run.err
    assert "run `primage cluster build`" in run.err
    assert "Traceback" not in run.err


def test_a_port_in_use_is_refused_before_anything_changes(built, primage):
    before = host_snapshot()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", cluster.Settings().etcd_client_port))
        squatter.listen()
        run = primage("cluster", "up")
    assert run.code == 1
    assert "port 2379 (etcd clients, on 127.0.0.1) is in use by " in run.err
    assert differences(before, host_snapshot()) == []


def test_a_missing_image_is_refused_before_anything_changes(built, primage):
    before = host_snapshot()
    run = primage("cluster", "up", "--image", "primage-cluster-test:no-such-tag")
    assert run.code == 1
    assert "image primage-cluster-test:no-such-tag is not in the local Docker engine" in run.err
    assert differences(before, host_snapshot()) == []


def test_up_down_leaves_the_host_as_it_was(built, primage):
    before = host_snapshot()
    up = primage("cluster", "up", "--no-fuse-plugin")
    assert up.code == 0, up.err
    try:
        during = host_snapshot()
        # The cluster did change the host (else this test could not fail).
        assert host.link_exists(cluster.Settings().bridge)
        assert differences(before, during)
        again = primage("cluster", "up")
        assert again.code == 1
        assert "the cluster is already up" in again.err
        assert "run `primage cluster down` first" in again.err
        kubeconfig = primage("cluster", "kubeconfig")
        assert kubeconfig.out.strip() == str(cluster.Layout().admin_kubeconfig)
    finally:
        down = primage("cluster", "down")
    assert down.code == 0, down.err
    assert differences(before, host_snapshot()) == []
    assert primage("cluster", "down").out.strip() == "no cluster is up"
    status = primage("cluster", "status")
    assert status.code == 1
    assert "no cluster is up" in status.out


def test_another_clusters_bridge_is_refused(built, primage):
    before = host_snapshot()
    bridge = cluster.Settings().bridge
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "link", "set", "dev", bridge, "alias", "primage cluster /elsewhere"], check=True)
        run = primage("cluster", "up")
    finally:
        subprocess.run(["ip", "link", "delete", bridge], check=True)
    assert run.code == 1
    assert f"interface {bridge} exists already" in run.err
    assert "its owner: primage cluster /elsewhere" in run.err
    assert differences(before, host_snapshot()) == []


def test_a_dead_cluster_of_another_checkout_is_taken_down_first(built, primage, tmp_path):
    """Its bridge names a recorded cluster whose processes are all gone: `up` restores the host
    that cluster left instead of refusing, and the cluster it starts then comes down cleanly."""
    import dataclasses
    import json

    before = host_snapshot()
    settings = cluster.Settings()
    other = cluster.Layout(tmp_path / "other" / "cluster")
    dead = subprocess.Popen(["true"])
    dead.wait()
    state = {
        "settings": dataclasses.asdict(settings),
        "host": {"sysctls": {}, "folders": host.existing_folders(), "chains": {}},
        "processes": [{"name": "etcd", "pid": dead.pid, "start_ticks": 1, "log": str(tmp_path / "etcd.log")}],
        "phase": "up",
        "started": "earlier",
    }
    other.state_file.parent.mkdir(parents=True)
    other.state_file.write_text(json.dumps(state))
    subprocess.run(["ip", "link", "add", settings.bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", "dev", settings.bridge, "alias", f"primage cluster {other.base}"], check=True)
    try:
        up = primage("cluster", "up", "--no-fuse-plugin")
    finally:
        down = primage("cluster", "down")
        if host.link_exists(settings.bridge):
            subprocess.run(["ip", "link", "delete", settings.bridge], check=False)
    assert up.code == 0, up.err
    assert "stopped without `down`: restoring the host it left first" in up.err + up.out
    assert not other.state_file.exists()
    assert down.code == 0, down.err
    assert differences(before, host_snapshot()) == []


def test_down_after_a_component_died_still_restores_the_host(built, primage):
    """The kubelet killed while its pods run: status says so, down cleans up all the same."""
    before = host_snapshot()
    assert primage("cluster", "up").code == 0
    try:
        kubelet = next(p for p in cluster.status()["processes"] if p["name"] == "kubelet")
        os.kill(kubelet["pid"], signal.SIGKILL)
        # SIGKILL takes effect when the process leaves the kernel (a kubelet in the middle of I/O
        # lingers a moment): wait for it to be gone, then ask, so the test does not race the kill.
        deadline = time.monotonic() + 30
        while host.start_ticks(kubelet["pid"]) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert host.start_ticks(kubelet["pid"]) is None, "the killed kubelet is still running after 30 s"
        status = primage("cluster", "status")
        assert status.code == 1
        assert "a component exited" in status.out
        assert any(line.split()[:3] == ["kubelet", str(kubelet["pid"]), "exited"] for line in status.out.splitlines())
    finally:
        down = primage("cluster", "down")
    assert down.code == 0, down.err
    assert differences(before, host_snapshot()) == []
