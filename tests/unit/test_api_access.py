"""The Kubernetes API is open only to the range the user names: the TOSCA input has no default
(every template, every input case), and no RADL template opens port 6443 to everyone."""

from __future__ import annotations

import re

import pytest
import yaml

from primage import pieces, tosca

TOPOLOGIES = [p for p in pieces.discover() if p.kind == "tosca-template"]
RADL_TEMPLATES = [p for p in pieces.discover() if p.kind == "radl-template"]
API_PORT = 6443


def api_ports(path):
    """(node, port name, remote_cidr) of every endpoint port that opens the API."""
    nodes = yaml.safe_load(path.read_text())["topology_template"]["node_templates"]
    for node, spec in nodes.items():
        ports = (((spec.get("capabilities") or {}).get("endpoint") or {}).get("properties") or {}).get("ports") or {}
        for name, port in ports.items():
            if port.get("source") == API_PORT:
                yield node, name, port.get("remote_cidr")


@pytest.mark.parametrize("piece", TOPOLOGIES, ids=lambda p: p.name)
def test_the_api_range_is_a_required_input(piece):
    opened = list(api_ports(piece.path))
    assert opened, f"{piece.name} opens no API port"
    for node, name, cidr in opened:
        assert cidr == {"get_input": "kube_allowed_cidr"}, (node, name)
    declared = tosca.load(piece.path).inputs["kube_allowed_cidr"]
    assert "default" not in declared
    assert declared["constraints"] == [{"pattern": r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"}]


def test_rendering_without_a_range_says_it_is_required(primage, tmp_path):
    rendered = primage(
        "render", "kubernetes_cluster", "--set", "os_image=ost://cloud.example.org/i", "-o", tmp_path / "o"
    )
    assert rendered.code == 1
    assert rendered.err.startswith(
        "primage: tosca/kubernetes_cluster.yaml:96 (kube_allowed_cidr): required input 'kube_allowed_cidr' has no value"
    )
    everyone = primage(
        "render",
        "kubernetes_cluster",
        "--set",
        "os_image=ost://cloud.example.org/i",
        "--set",
        "kube_allowed_cidr=0.0.0.0/0",
        "-o",
        tmp_path / "o",
    )
    assert everyone.code == 0, everyone.err  # the whole internet only when the user says so
    rendered_inputs = yaml.safe_load((tmp_path / "o").read_text())["topology_template"]["inputs"]
    assert rendered_inputs["kube_allowed_cidr"]["default"] == "0.0.0.0/0"


@pytest.mark.parametrize("piece", RADL_TEMPLATES, ids=lambda p: p.name)
def test_no_radl_template_opens_the_api_to_everyone(piece):
    for ports in re.findall(r"outports\s*(?:=|contains)\s*'([^']*)'", piece.path.read_text()):
        for port in ports.split(","):
            assert not re.fullmatch(rf"\s*{API_PORT}(/tcp)?(-{API_PORT}(/tcp)?)?\s*", port), (piece.name, port)
