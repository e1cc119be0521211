"""A new piece is picked up the moment its file exists: no list to update."""

from __future__ import annotations


def test_a_new_template_and_case_show_up_in_list_and_check(primage, checkout):
    new = checkout / "tosca" / "gpu_cluster.yaml"
    new.write_text((checkout / "tosca" / "kubernetes_cluster.yaml").read_text())
    (checkout / "tosca" / "ci" / "gpu_cluster-small.yaml").write_text(
        "---\nos_image: ost://site/img\nkube_allowed_cidr: 203.0.113.0/24\n"
    )
    listing = primage("list", "--json").json()
    found = {(p["name"], p["kind"]) for p in listing}
    assert {("gpu_cluster", "tosca-template"), ("gpu_cluster-small", "tosca-case")} <= found
    run = primage("check", "gpu_cluster-small", "--json")
    assert run.code == 0, run.out
    assert [p["name"] for p in run.json()["pieces"]] == ["gpu_cluster-small"]


def test_a_case_that_names_no_template_is_refused(primage, checkout):
    (checkout / "tosca" / "ci" / "nothing-small.yaml").write_text("---\n{}\n")
    run = primage("list")
    assert run.code == 1
    assert "tosca/ci/nothing-small.yaml: input case belongs to no template: name it <template>-<case>.yaml" in run.err


def test_every_kind_of_piece_is_listed(primage):
    kinds = {p["kind"] for p in primage("list", "--json").json()}
    assert {
        "tosca-template",
        "tosca-case",
        "tosca-types",
        "radl-template",
        "radl-composition",
        "role",
        "playbook",
        "base-image",
        "workload-case",
    } <= kinds


def test_unknown_selector_lists_what_exists(primage):
    run = primage("check", "no-such-piece")
    assert run.code == 2
    assert "'no-such-piece' is no piece, kind or file; pieces:" in run.err
