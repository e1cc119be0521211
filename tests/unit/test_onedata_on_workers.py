"""Node mode needs the space on every node that runs tasks: the templates mount it on the workers
too, as IM and EC3 themselves compose them."""

from __future__ import annotations

import re

import pytest

from primage import checks, pieces
from primage.checks.registry import checks_for

PIECES = {p.name: p for p in pieces.discover()}


def _context_after_checks(name: str, options: dict) -> checks.Context:
    piece = PIECES[name]
    context = checks.Context(options)
    for _, check in checks_for(piece.kind):
        assert check(piece, context).status != checks.FAIL
    return context


@pytest.mark.parametrize("case", ["htc_batch-typical", "jupyter-typical"])
def test_im_configures_the_oneclient_mount_on_the_workers(case):
    radl = _context_after_checks(case, {"has_cases": False})["radl"]
    steps = re.findall(r"^system (\w+) configure (\w+)", radl, re.M)
    mounts = {system for system, step in steps if step.startswith("onedata_space")}
    assert mounts == {"front", "wn"}
    wn_step = next(step for system, step in steps if system == "wn" and step.startswith("onedata_space"))
    recipe = radl.split(f"configure {wn_step} (", 1)[1].split("\n)\n", 1)[0]
    assert "primage.platform.oneclient" in recipe or "oneclient.yml" in recipe or "Onedata space mounted" in recipe


@pytest.mark.parametrize("composition", ["htc_batch-debian13", "jupyter-ubuntu2404"])
def test_ec3_composes_the_oneclient_recipe_for_the_workers(composition):
    radl = _context_after_checks(composition, {})["composition"].radl
    wn_recipes = radl.split("configure wn (", 1)[1].split("\n)\n", 1)[0]
    assert "role: primage.platform.oneclient" in wn_recipes
    assert "role: primage.platform.kubernetes" in wn_recipes
