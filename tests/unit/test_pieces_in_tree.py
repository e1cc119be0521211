"""Every TOSCA and RADL piece of the repository passes `primage check`, each its own test case,
and the parts that must agree across files do."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT
from primage import checks, pieces, release
from primage.checks.registry import checks_for

TEMPLATE_KINDS = ("tosca-template", "tosca-case", "tosca-types", "radl-template", "radl-composition")
PIECES = [p for p in pieces.discover() if p.kind in TEMPLATE_KINDS]
CASE_OWNERS = {p.related[0].stem for p in PIECES if p.kind == "tosca-case"}


@pytest.mark.parametrize("piece", PIECES, ids=lambda p: f"{p.kind}:{p.name}")
def test_piece_passes_every_check(piece):
    report = checks.run_checks(piece, checks_for(piece.kind), {"has_cases": piece.name in CASE_OWNERS})
    problems = [f"{r.check}: {p}" for r in report.results for p in r.problems]
    assert not problems
    assert [r.check for r in report.results if r.status == checks.NOT_RUN] == []
    assert any(r.status == checks.PASS for r in report.results)


def test_the_cluster_part_of_every_application_topology_is_the_cluster_template():
    """htc_batch and jupyter extend kubernetes_cluster; the shared part must not drift."""
    base = yaml.safe_load((ROOT / "tosca" / "kubernetes_cluster.yaml").read_text())["topology_template"]
    for name in ("htc_batch", "jupyter"):
        topology = yaml.safe_load((ROOT / "tosca" / f"{name}.yaml").read_text())["topology_template"]
        for key, value in base["inputs"].items():
            assert topology["inputs"][key] == value, (name, key)
        for node in ("lrms_front_end", "lrms_worker", "wn"):
            assert topology["node_templates"][node] == base["node_templates"][node], (name, node)
        front = topology["node_templates"]["front"]
        assert front["capabilities"]["host"] == base["node_templates"]["front"]["capabilities"]["host"]
        assert front["capabilities"]["os"] == base["node_templates"]["front"]["capabilities"]["os"]
        for key in ("api_endpoint", "front_end_address"):
            assert topology["outputs"][key] == base["outputs"][key], (name, key)


def test_every_reference_to_the_repository_names_the_release_tag():
    pin = release.current()
    files = [*ROOT.glob("tosca/**/*.yaml"), *ROOT.glob("radl/**/*.radl")]
    refs = {str(f.relative_to(ROOT)): pin.pinned_refs(f.read_text()) for f in files}
    assert sum(len(r) for r in refs.values()) >= 5  # templates do point at the repository
    wrong = {f: r for f, r in refs.items() if any(ref != pin.tag for ref in r)}
    assert not wrong


def test_types_file_version_is_the_release_version():
    types = yaml.safe_load((ROOT / "tosca" / "types" / "primage_types.yaml").read_text())
    assert types["metadata"]["template_version"] == release.current().version
    for template in ROOT.glob("tosca/*.yaml"):
        assert yaml.safe_load(template.read_text())["metadata"]["template_version"] == release.current().version


def test_kubernetes_version_of_the_templates_is_the_roles_pin():
    defaults = yaml.safe_load((ROOT / "ansible/roles/kubernetes/defaults/main.yml").read_text())
    pinned = str(defaults["kubernetes_version"])
    template = yaml.safe_load((ROOT / "tosca/kubernetes_cluster.yaml").read_text())
    assert template["topology_template"]["inputs"]["kube_version"]["default"] == pinned
    types = yaml.safe_load((ROOT / "tosca/types/primage_types.yaml").read_text())["node_types"]
    assert types["tosca.nodes.primage.LRMS.FrontEnd.Kubernetes"]["properties"]["version"]["default"] == pinned
    assert re.search(rf'kubernetes_version: "{re.escape(pinned)}"', (ROOT / "radl/kubernetes.radl").read_text())


def test_generated_documentation_is_current(primage):
    run = primage("docs", "--check")
    assert run.code == 0, run.err
