"""What the templates hand to the roles is what the roles accept.

Every input of a TOSCA node type's configure step is an option of a role the playbook calls
(or a variable the playbook itself uses), and every variable an EC3 recipe gives a
primage.platform role is one of that role's options. A renamed role variable fails here,
not on a cloud VM."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT
from primage import radl, roles

TYPES = yaml.safe_load((ROOT / "tosca/types/primage_types.yaml").read_text())["node_types"]
OPTIONS = {role.name: set(role.main_options()) for role in roles.discover()}
CALL = re.compile(r"role: primage\.platform\.(\w+)")


def type_chain(name: str) -> list[dict]:
    chain = []
    while name in TYPES:
        chain.append(TYPES[name])
        name = TYPES[name].get("derived_from")
    return chain


CONFIGURED = [name for name in TYPES if (TYPES[name].get("interfaces") or {}).get("Standard", {}).get("configure")]


def test_the_platform_node_types_all_configure_something():
    assert len(CONFIGURED) >= 5


@pytest.mark.parametrize("node_type", CONFIGURED)
def test_configure_inputs_are_role_options(node_type):
    configure = TYPES[node_type]["interfaces"]["Standard"]["configure"]
    artifacts = {}
    for definition in reversed(type_chain(node_type)):
        artifacts.update(definition.get("artifacts") or {})
    playbook = (ROOT / artifacts[configure["implementation"]]["file"]).read_text()
    called = CALL.findall(playbook)
    assert called, f"{node_type}'s playbook calls no primage.platform role"
    accepted = set().union(*(OPTIONS[role] for role in called))
    unknown = [name for name in configure.get("inputs", {}) if name not in accepted and name not in playbook]
    assert unknown == []


RECIPES = [recipe for path in sorted(ROOT.glob("radl/*.radl")) for recipe in radl.load(path).recipes]


@pytest.mark.parametrize("path", sorted(ROOT.glob("radl/*.radl")), ids=lambda p: p.stem)
def test_radl_recipe_variables_are_role_options(path):
    tpl = radl.load(path)
    given = []
    for recipe in tpl.recipes:
        for play in yaml.safe_load(recipe.text):
            for entry in play.get("roles") or []:
                match = CALL.match(f"role: {entry.get('role', '')}")
                if match:
                    given.extend((match.group(1), name) for name in entry.get("vars") or {})
    assert given, f"{path.name} gives no role any variable"
    assert [(role, name) for role, name in given if name not in OPTIONS[role]] == []
