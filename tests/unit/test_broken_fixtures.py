"""Every broken fixture fails `primage check` with the exact message a template author sees.

Fixtures live in tests/fixtures/broken/<kind>/, are named after their failure, and carry
their expectation in header comments: `# expect-check: <check>`, `# expect-line: <n>`
(optional) and `# expect: <message>`. Input-value fixtures name their template with
`# template: <name>`. A new fixture file is a new test case.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

BROKEN = FIXTURES / "broken"
FILE_FIXTURES = sorted([*BROKEN.glob("tosca/*.yaml"), *BROKEN.glob("radl/*.radl"), *BROKEN.glob("compositions/*.yaml")])
INPUT_FIXTURES = sorted(BROKEN.glob("inputs/*.yaml"))


def header(path: Path, key: str) -> str | None:
    match = re.search(rf"^# {key}: (.*)$", path.read_text(), re.M)
    return match.group(1).strip() if match else None


def problems_of(run, check: str | None = None) -> list[dict]:
    report = run.json()
    return [
        problem
        for piece in report["pieces"]
        for result in piece["results"]
        if check is None or result["check"] == check
        for problem in result["problems"]
    ]


def test_there_are_fixtures_of_every_family():
    assert len([f for f in FILE_FIXTURES if f.parent.name == "tosca"]) >= 8
    assert len([f for f in FILE_FIXTURES if f.parent.name == "radl"]) >= 5
    assert len([f for f in FILE_FIXTURES if f.parent.name == "compositions"]) >= 3
    assert len(INPUT_FIXTURES) >= 6


@pytest.mark.parametrize("fixture", FILE_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_check_reports_the_failure(primage, fixture):
    run = primage("check", fixture, "--json")
    assert run.code == 1, run.out
    check, message, line = (
        header(fixture, "expect-check"),
        header(fixture, "expect"),
        header(fixture, "expect-line"),
    )
    found = problems_of(run, check)
    assert any(p["message"] == message for p in found), f"{message!r} not in {found}"
    problem = next(p for p in found if p["message"] == message)
    assert problem["file"] == str(fixture.relative_to(ROOT))
    if line:
        assert problem["line"] == int(line)


@pytest.mark.parametrize("fixture", INPUT_FIXTURES, ids=lambda p: p.stem)
def test_bad_input_values_are_refused(primage, fixture):
    template = ROOT / "tosca" / f"{header(fixture, 'template')}.yaml"
    run = primage("check", template, "-i", fixture, "--json")
    assert run.code == 1
    found = problems_of(run, "inputs")
    assert [p["message"] for p in found] == [header(fixture, "expect")]
    # The error points at the file holding the bad value, or at the template for a missing one.
    assert found[0]["file"] in (str(fixture.relative_to(ROOT)), str(template.relative_to(ROOT)))
    assert found[0]["line"] is not None


def test_render_refuses_bad_inputs_with_the_same_message(primage, tmp_path):
    fixture = BROKEN / "inputs" / "wrong_type.yaml"
    run = primage("render", "kubernetes_cluster", "-i", fixture, "-o", tmp_path / "out.yaml")
    assert run.code == 1
    assert f"{fixture.relative_to(ROOT)}:6 (wn_num): input 'wn_num': expected an integer, got str 'three'" in run.err
    assert "Traceback" not in run.err
    assert not (tmp_path / "out.yaml").exists()
