"""How `primage check` reads templates nobody here wrote: the types tosca-parser knows, imports
however they are written, house style as warnings, RADL in the context EC3 composes it in."""

from __future__ import annotations

import shutil

import pytest
import yaml

from conftest import FIXTURES, ROOT
from primage import release, tosca_types

HEAD = "---\ntosca_definitions_version: tosca_simple_yaml_1_0\n"


def results_of(run) -> dict[str, dict]:
    (piece,) = run.json()["pieces"]
    return {result["check"]: result for result in piece["results"]}


def messages(run, check: str) -> list[str]:
    return [problem["message"] for problem in results_of(run)[check]["problems"]]


# --------------------------------------------------------------------------- normative types


def test_the_normative_types_are_exactly_tosca_parsers():
    from toscaparser.elements.entity_type import EntityType

    sections = tosca_types.normative("tosca_simple_yaml_1_0")
    ours = {name for types in sections.values() for name in types}
    assert ours == set(EntityType.TOSCA_DEF)  # tosca-parser's own lookup table, no more, no less
    assert not ours & set(tosca_types.SECTIONS)  # the section names are no types
    for section, example in {
        "node_types": "tosca.nodes.BlockStorage",
        "capability_types": "tosca.capabilities.Endpoint.Admin",
        "relationship_types": "tosca.relationships.AttachesTo",
        "data_types": "tosca.datatypes.network.PortSpec",
        "artifact_types": "tosca.artifacts.Deployment.Image.VM",
        "interface_types": "tosca.interfaces.node.lifecycle.Standard",
        "policy_types": "tosca.policies.Placement",
        "group_types": "tosca.groups.Root",
    }.items():
        assert example in sections[section], (section, example)


def test_the_nfv_profile_adds_its_types():
    assert "tosca.nodes.nfv.VNF" in tosca_types.normative("tosca_simple_profile_for_nfv_1_0_0")["node_types"]
    assert "tosca.nodes.nfv.VNF" not in tosca_types.normative("tosca_simple_yaml_1_0")["node_types"]


@pytest.mark.parametrize(
    ("written", "section", "meant"),
    [
        ("tosca.nodes.Compute", "node_types", "tosca.nodes.Compute"),
        ("Compute", "node_types", "tosca.nodes.Compute"),
        ("tosca:BlockStorage", "node_types", "tosca.nodes.BlockStorage"),
        ("AttachesTo", "relationship_types", "tosca.relationships.AttachesTo"),
        ("Placement", "policy_types", "tosca.policies.Placement"),
        ("node_types", "node_types", None),
        ("tosca.nodes.Compte", "node_types", None),
    ],
)
def test_type_names_resolve_as_in_tosca_parser(written, section, meant):
    catalog = tosca_types.catalog({"tosca_definitions_version": "tosca_simple_yaml_1_0"}, ROOT, "x")
    assert catalog.resolve(written, section) == meant


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("tosca.nodes.BlockStorag", "did you mean 'tosca.nodes.BlockStorage'?"),
        ("Compte", "did you mean 'tosca.nodes.Compute'?"),
        ("tosca.nodes.SoftwareComponnt", "did you mean 'tosca.nodes.SoftwareComponent'?"),
        ("org.example.Nothing", "it is no normative node type of the TOSCA Simple Profile"),
    ],
)
def test_a_normative_type_misspelt_gets_the_right_hint(primage, tmp_path, written, hint):
    template = tmp_path / "typo.yaml"
    template.write_text(HEAD + f"topology_template:\n  node_templates:\n    vm:\n      type: {written}\n")
    run = primage("check", template, "--json")
    assert run.code == 1
    (message,) = messages(run, "semantics")
    assert message.startswith(f"node 'vm' has unknown type '{written}'; ")
    assert hint in message


def test_every_normative_node_type_is_known_directly(primage, tmp_path):
    """No import needed for any of them, as in tosca-parser and IM."""
    nodes = {
        f"n{index}": {"type": name}
        for index, name in enumerate(sorted(tosca_types.normative("tosca_simple_yaml_1_0")["node_types"]))
    }
    template = tmp_path / "all.yaml"
    template.write_text(HEAD + yaml.safe_dump({"topology_template": {"node_templates": nodes}}))
    run = primage("check", template, "--json")
    assert results_of(run)["semantics"]["status"] == "pass", messages(run, "semantics")


# --------------------------------------------------------------------------- imports


TYPES = """tosca_definitions_version: tosca_simple_yaml_1_0
node_types:
  {name}:
    derived_from: tosca.nodes.Root
"""


@pytest.fixture
def types_everywhere(tmp_path):
    """Types files reachable in every way an import can be written."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "nested.yaml").write_text(TYPES.format(name="org.example.Nested"))
    (tmp_path / "lib" / "relative.yaml").write_text(
        "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - nested.yaml\n"
        + TYPES.format(name="org.example.Relative").split("\n", 1)[1]
    )
    (tmp_path / "absolute.yaml").write_text(TYPES.format(name="org.example.FileUrl"))
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "remote.yaml").write_text(TYPES.format(name="org.example.Mapped"))
    (tmp_path / "prefixed.yaml").write_text(TYPES.format(name="Prefixed"))
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "in_repo.yaml").write_text(TYPES.format(name="org.example.InRepository"))
    return tmp_path


def test_types_are_known_however_they_are_imported(primage, types_everywhere):
    folder = types_everywhere
    used = {
        "org.example.Relative": "relative path",
        "org.example.Nested": "import of an import",
        "org.example.FileUrl": "file:// URL",
        "org.example.Mapped": "URL with a local copy (--map-url)",
        "site.Prefixed": "namespace prefix",
        "org.example.InRepository": "file of a declared repository",
        "tosca.nodes.primage.Compute": "this repository's release URL",
    }
    document = {
        "tosca_definitions_version": "tosca_simple_yaml_1_0",
        "repositories": {"site": {"url": "https://types.example.org/repo/"}},
        "imports": [
            {"relative": "lib/relative.yaml"},
            {"file_url": f"file://{folder}/absolute.yaml"},
            "https://types.example.org/v1/remote.yaml",
            {"prefixed": {"file": "prefixed.yaml", "namespace_prefix": "site"}},
            {"in_repo": {"file": "in_repo.yaml", "repository": "site"}},
            release.current().raw_url("tosca/types/primage_types.yaml"),
        ],
        "topology_template": {
            "node_templates": {
                **{f"n{index}": {"type": name} for index, name in enumerate(used) if "primage" not in name},
                "vm": {
                    "type": "tosca.nodes.primage.Compute",
                    "capabilities": {"os": {"properties": {"type": "linux"}}},
                },
            }
        },
    }
    template = folder / "uses_all.yaml"
    template.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))
    maps = [
        "--map-url",
        f"https://types.example.org/v1/={folder}/mirror/",
        "--map-url",
        f"https://types.example.org/repo/={folder}/repo/",
    ]
    catalog = tosca_types.catalog(document, folder, "uses_all.yaml", tosca_types.UrlMap.parse(maps[1::2]))
    for name, how in used.items():
        assert catalog.resolve(name, "node_types") == name, how
    run = primage("check", template, *maps, "--json")
    results = results_of(run)
    assert run.code == 0, run.out
    assert [results[check]["status"] for check in ("semantics", "tosca-parser", "im-translate")] == ["pass"] * 3


def test_an_import_this_machine_cannot_fetch_is_not_the_templates_fault(primage, tmp_path):
    template = tmp_path / "remote.yaml"
    template.write_text(
        HEAD + "imports:\n  - https://types.invalid/custom_types.yaml\n"
        "topology_template:\n  node_templates:\n    vm:\n      type: org.example.RemoteCompute\n"
    )
    run = primage("check", template, "--json")
    assert run.code == 0  # nothing is wrong with the template as far as anyone here can tell
    results = results_of(run)
    assert results["semantics"]["status"] == "pass"  # never "unknown type": it may live behind the URL
    assert results["tosca-parser"]["status"] == "not run"
    assert "https://types.invalid/custom_types.yaml" in results["tosca-parser"]["reason"]
    assert "--map-url" in results["tosca-parser"]["reason"]


def test_a_missing_import_names_the_file_and_where_it_was_looked_for(primage, tmp_path):
    template = tmp_path / "missing.yaml"
    template.write_text(HEAD + "imports:\n  - types/none.yaml\ntopology_template:\n  node_templates: {}\n")
    run = primage("check", template, "--json")
    assert run.code == 1
    (problem,) = results_of(run)["semantics"]["problems"]
    assert problem["message"] == f"imported file not found: types/none.yaml (looked at {tmp_path}/types/none.yaml)"
    assert problem["line"] == 4


def test_map_url_needs_an_existing_copy(primage, tmp_path):
    run = primage("check", "tosca-types", "--map-url", f"https://x.example.org/a.yaml={tmp_path}/none.yaml")
    assert run.code == 2
    assert "--map-url https://x.example.org/a.yaml" in run.err


def test_render_local_points_mapped_imports_at_their_copy(primage, types_everywhere, tmp_path):
    template = types_everywhere / "mapped.yaml"
    template.write_text(
        HEAD + "imports:\n  - https://types.example.org/v1/remote.yaml\n"
        "topology_template:\n  node_templates:\n    app:\n      type: org.example.Mapped\n"
    )
    out = tmp_path / "rendered.yaml"
    mapping = f"https://types.example.org/v1/={types_everywhere}/mirror/"
    run = primage("render", template, "--artifacts", "local", "--map-url", mapping, "-o", out)
    assert run.code == 0, run.err
    assert yaml.safe_load(out.read_text())["imports"] == [str(types_everywhere / "mirror" / "remote.yaml")]


# --------------------------------------------------------------------------- house style


def test_breaking_yaml_fails_a_foreign_file_too(primage, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(HEAD + "topology_template:\n  node_templates: {\n")
    duplicated = tmp_path / "duplicated.yaml"
    duplicated.write_text(HEAD + "description: a\ndescription: b\ntopology_template:\n  node_templates: {}\n")
    for path, rule in ((broken, "syntax"), (duplicated, "key-duplicates")):
        run = primage("check", path, "--json")
        assert run.code == 1
        yamllint = results_of(run)["yamllint"]
        assert yamllint["status"] == "FAIL"
        assert any(f"[yamllint {rule}]" in p["message"] and p["severity"] == "error" for p in yamllint["problems"])


def test_house_style_stays_strict_for_the_repositorys_own_pieces(primage, checkout):
    template = checkout / "tosca" / "kubernetes_cluster.yaml"
    template.write_text(template.read_text().removeprefix("---\n"))
    run = primage("check", "kubernetes_cluster", "--json")
    assert run.code == 1
    (problem,) = results_of(run)["yamllint"]["problems"]
    assert problem["severity"] == "error"
    assert "[yamllint document-start]" in problem["message"]
    outside = checkout.parent / "copy_elsewhere.yaml"
    shutil.copy(template, outside)
    (outside.parent / "types").mkdir()
    shutil.copy(checkout / "tosca" / "types" / "primage_types.yaml", outside.parent / "types")
    elsewhere = primage("check", outside, "--json")
    assert results_of(elsewhere)["yamllint"]["status"] == "warn"


# --------------------------------------------------------------------------- RADL in its context


def _component(name: str, include: str) -> str:
    return (
        f"description {name} ( kind = 'component' and short = 'x' )\n"
        f"system front ( ec3_templates contains '{name}' )\n"
        f"include {name}_needs ( template = '{include}' )\n"
    )


def test_a_radl_include_is_found_in_the_users_ec3_templates(primage, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ec3" / "templates").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    template = tmp_path / "site" / "mine.radl"
    template.parent.mkdir()
    template.write_text(_component("mine", "shared_piece"))
    missing = primage("check", template, "--json")
    assert missing.code == 1
    (message,) = messages(missing, "ec3-compose")
    assert message.startswith("includes 'shared_piece', which is in none of the folders EC3 would look in (")
    for folder in (template.parent, template.parent / "templates", home / ".ec3" / "templates", "/etc/ec3/templates"):
        assert str(folder) in message
    (home / ".ec3" / "templates" / "shared_piece.radl").write_text(
        "system wn ( disk.1.size = 10GB and disk.1.mount_path = '/scratch' )\n"
    )
    found = primage("check", template, "--json")
    assert found.code == 0, found.out
    assert results_of(found)["ec3-compose"]["status"] == "pass"


def test_a_recipe_that_is_neither_plays_nor_variables_says_im_would_drop_it(primage, tmp_path):
    template = tmp_path / "text_recipe.radl"
    template.write_text("system front ( cpu.count >= 1 )\nconfigure front (\n@begin\njust some text\n@end\n)\n")
    run = primage("check", template, "--json")
    assert run.code == 1
    assert messages(run, "recipes") == [
        "recipe of configure 'front' must be a list of plays or a mapping of variables; "
        "IM would drop this str and the node would not be configured"
    ]


# --------------------------------------------------------------------------- messages name their field


def test_tosca_parser_messages_name_the_field_they_are_about(primage, tmp_path):
    template = tmp_path / "fields.yaml"
    template.write_text(
        HEAD
        + """topology_template:
  inputs:
    n:
      type: integer
      default: 1
      descripton: a misspelt key
  node_templates:
    vm:
      type: tosca.nodes.Compute
      capabilitys:
        host:
          properties: {num_cpus: 1}
    vol:
      type: tosca.nodes.BlockStorage
  outputs:
    x:
      value: {get_attribute: [vmm, public_address]}
"""
    )
    run = primage("check", template, "--json")
    found = {
        (p["line"], p["field"], p["message"].split(": ", 1)[0]) for p in results_of(run)["tosca-parser"]["problems"]
    }
    assert found == {
        (8, "n", "input 'n'"),
        (12, "capabilitys", "field 'capabilitys' of node 'vm'"),
        (15, "vol", "node 'vol'"),
        (19, "x", "output 'x'"),
    }


def test_a_foreign_types_file_is_checked_as_types(primage):
    run = primage("check", FIXTURES / "foreign/tosca/vendored/indigo-style/custom_types.yaml", "--json")
    assert run.code == 0, run.out
    (piece,) = run.json()["pieces"]
    assert (piece["kind"], piece["own"]) == ("tosca-types", False)
    assert results_of(run)["tosca-parser"]["status"] == "pass"
