"""`primage check` agrees with the real tools on templates written the way users outside this
repository write them (tests/fixtures/foreign/): what IM's translator and the real `ec3`
accept, primage accepts; what they refuse, primage refuses; and what they accept but would
break the deployment later, primage refuses saying what would break.

Each template is run through its oracle here (IM's `Tosca(text).to_radl()` for TOSCA, the
real `ec3 launch ... --dry-run` for RADL), which must give the verdict the template's header
declares, so that a template never silently turns into a case that tests nothing. A new
file in the corpus is a new test case.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.foreign_corpus import (
    FOREIGN,
    RADL,
    TOSCA,
    declared,
    ec3_composes,
    header,
    im_translates,
    map_url_options,
)


def results_of(run) -> dict[str, dict]:
    (piece,) = run.json()["pieces"]
    return {result["check"]: result for result in piece["results"]}


def assert_refused_as_declared(path: Path, run) -> None:
    assert run.code == 1, run.out
    results = results_of(run)
    check, expected = header(path, "expect-check"), header(path, "expect")
    assert check, f"{path.name}: a refused template declares '# expect-check:'"
    assert expected, f"{path.name}: a refused template declares '# expect:'"
    messages = [problem["message"] for problem in results[check[0]]["problems"] if problem["severity"] == "error"]
    assert any(expected[0] in message for message in messages), f"{expected[0]!r} not in {messages}"
    for broken in header(path, "breaks"):
        assert any(broken in message for message in messages), f"{broken!r} (what would break) not in {messages}"
    problem = next(p for p in results[check[0]]["problems"] if expected[0] in p["message"])
    assert problem["line"] is not None or "fails on the template" in problem["message"]


# --------------------------------------------------------------------------- TOSCA


def test_the_tosca_corpus_covers_what_users_write():
    names = {path.stem for path in TOSCA}
    accepted = [path for path in TOSCA if declared(path) and not header(path, "breaks")]
    assert len(accepted) >= 8
    assert len([path for path in TOSCA if not declared(path)]) >= 5
    assert len([path for path in TOSCA if header(path, "breaks")]) >= 2
    assert {"normative_only", "block_storage_attached", "indigo_style_types_by_url", "odd_formatting"} <= names
    assert any(header(path, "map-url") for path in TOSCA)


@pytest.mark.parametrize("template", TOSCA, ids=lambda path: path.stem)
def test_check_agrees_with_ims_translator(primage, template, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # IM keeps an HTTP cache in the working folder
    accepted, said = im_translates(template)
    assert accepted == declared(template), f"IM {'accepts' if accepted else 'refuses'} it: {said}"
    run = primage("check", template, *map_url_options(template), "--json")
    if accepted and not header(template, "breaks"):
        assert run.code == 0, run.out
        results = results_of(run)
        # Checked for real: the same translation ran inside primage, nothing was skipped.
        for check in ("inputs", "semantics", "tosca-parser", "im-translate", "radl-check"):
            assert results[check]["status"] == "pass", (check, results[check])
        assert results["yamllint"]["status"] in ("pass", "warn")
    else:
        assert_refused_as_declared(template, run)


def test_house_style_of_a_foreign_template_is_shown_never_failed(primage):
    run = primage("check", FOREIGN / "tosca" / "odd_formatting.yaml", "--json")
    assert run.code == 0
    yamllint = results_of(run)["yamllint"]
    assert yamllint["status"] == "warn"
    rules = {re.search(r"\[yamllint ([\w-]+)\]", p["message"]).group(1) for p in yamllint["problems"]}
    assert {"document-start", "braces", "brackets", "indentation", "line-length", "truthy"} <= rules
    assert {p["severity"] for p in yamllint["problems"]} == {"warning"}
    assert all(p["line"] and p["field"] for p in yamllint["problems"])
    assert run.json()["warnings"] == len(yamllint["problems"])


# --------------------------------------------------------------------------- RADL


def test_the_radl_corpus_covers_what_users_write():
    accepted = [path for path in RADL if declared(path)]
    assert len(accepted) >= 8
    assert len(RADL) - len(accepted) >= 4
    texts = {path.name: path.read_text() for path in RADL}
    assert any("ec3_file" in text for text in texts.values())
    assert any(re.search(r"^include ", text, re.M) for text in texts.values())
    assert any("disk.1." in text for text in texts.values())
    assert any(path.parent.name == "templates" for path in RADL)


@pytest.mark.parametrize("template", RADL, ids=lambda path: str(path.relative_to(FOREIGN / "radl")))
def test_check_agrees_with_ec3(primage, template, tmp_path):
    accepted, said, _ = ec3_composes(template, tmp_path)
    assert accepted == declared(template), f"ec3 {'accepts' if accepted else 'refuses'} it: {said}"
    run = primage("check", template, "--json")
    if accepted:
        assert run.code == 0, run.out
        results = results_of(run)
        for check in ("ec3-parse", "recipes", "ec3-compose", "radl-check"):
            assert results[check]["status"] == "pass", (check, results[check])
    else:
        assert_refused_as_declared(template, run)
