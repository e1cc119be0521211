"""The worker joined with a bootstrap token and the pinned hash of the control plane's CA."""

import hashlib
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def ca_public_key_hash(pem: str) -> str:
    """sha256 of the CA's DER SubjectPublicKeyInfo, computed here, independently of the role."""
    certificate = x509.load_pem_x509_certificate(pem.encode())
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def test_join_config_is_root_only(worker):
    config = worker.file("/etc/kubernetes/kubeadm/kubeadm-join.yaml")
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)


def test_join_config_discovery(join_config, control_plane, init_config):
    assert join_config["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    discovery = join_config["discovery"]
    assert set(discovery) == {"bootstrapToken"}
    token = discovery["bootstrapToken"]
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token["token"])
    assert "unsafeSkipCAVerification" not in token
    endpoint = init_config["InitConfiguration"]["localAPIEndpoint"]
    assert token["apiServerEndpoint"] == f"{endpoint['advertiseAddress']}:{endpoint['bindPort']}"


def test_join_config_pins_the_control_plane_ca(join_config, control_plane):
    ca_pem = control_plane.file("/etc/kubernetes/pki/ca.crt").content_string
    assert join_config["discovery"]["bootstrapToken"]["caCertHashes"] == [ca_public_key_hash(ca_pem)]


def test_join_config_node_registration(join_config, worker):
    registration = join_config["nodeRegistration"]
    assert registration["name"] == worker.check_output("uname -n").lower()
    assert registration["criSocket"] == "unix:///run/containerd/containerd.sock"


def test_worker_joined_once_per_membership_with_the_right_ca(worker, control_plane):
    # One join for the first converge, and one more after each removal (side_effect.yml
    # removes the worker and adds it back); idempotence must never re-join.
    events = worker.file("/var/lib/kubeadm-stub/events.log").content_string.splitlines()
    joins = [line for line in events if line.startswith("join ")]
    resets = [line for line in events if line.startswith("reset ")]
    assert len(joins) == 1 + len(resets)
    assert not [line for line in events if line.startswith("FAILED")]
    ca_pem = control_plane.file("/etc/kubernetes/pki/ca.crt").content_string
    assert all(join.endswith(f"ca={ca_public_key_hash(ca_pem)}") for join in joins)
    assert worker.file("/etc/kubernetes/pki/ca.crt").content_string == ca_pem
    assert worker.file("/etc/kubernetes/kubelet.conf").mode == 0o600


def test_one_token_was_created_per_join(worker, control_plane):
    created = control_plane.file("/var/lib/kubeadm-stub/events.log").content_string.splitlines()
    joined = worker.file("/var/lib/kubeadm-stub/events.log").content_string.splitlines()
    tokens = [line for line in created if line.startswith("token create")]
    assert tokens
    assert len(tokens) == len([line for line in joined if line.startswith("join ")])
