"""The CI definitions run the README's commands on every commit, and nothing unpinned.
(Their schemas and actionlint are pre-commit hooks: tox -e lint.)"""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT

GITLAB = ROOT / ".gitlab-ci.yml"
GITHUB = ROOT / ".github" / "workflows" / "ci.yml"
STEPS = [
    "scripts/setup.sh",
    ".venv/bin/primage check",
    ".venv/bin/primage images build",
    ".venv/bin/primage images test",
    ".venv/bin/primage images push --registry",
    ".ci/run",
]


def scripts(definition) -> list[str]:
    """Every shell line of a CI definition, in order (GitLab script lists, GitHub run steps)."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("script", "before_script", "run"):
                    found.extend([value] if isinstance(value, str) else value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(definition)
    return found


@pytest.mark.parametrize("path", [GITLAB, GITHUB], ids=lambda p: p.name)
def test_ci_runs_the_readme_commands_in_order(path):
    text = "\n".join(scripts(yaml.safe_load(path.read_text())))
    positions = [text.find(step) for step in STEPS]
    assert -1 not in positions, [step for step, at in zip(STEPS, positions, strict=True) if at == -1]
    assert positions[1:5] == sorted(positions[1:5])
    readme = (ROOT / "README.md").read_text()
    for step in ("primage check", "primage images build", "primage images test", "primage images push"):
        assert step in readme


@pytest.mark.parametrize("path", [GITLAB, GITHUB], ids=lambda p: p.name)
def test_the_password_reaches_push_on_standard_input_only(path):
    pushes = [line for line in scripts(yaml.safe_load(path.read_text())) if "images push" in line]
    assert pushes
    for line in pushes:
        assert "--password-file -" in line
        assert re.search(r"printf '%s' \"\$\{?PRIMAGE_REGISTRY_PASSWORD", line)
        assert "--password " not in line


def test_the_workflow_runs_on_every_commit_with_pinned_actions():
    workflow = yaml.safe_load(GITHUB.read_text())
    assert set(workflow["on"]) == {"push", "pull_request"}
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use) for use in uses), uses


def test_gitlab_runs_every_job_on_every_commit():
    pipeline = yaml.safe_load(GITLAB.read_text())
    assert {rule.get("if") for rule in pipeline["workflow"]["rules"]} >= {"$CI_COMMIT_BRANCH", "$CI_COMMIT_TAG"}
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job}
    assert set(jobs) == {"check", "images", "tox"}
    assert all(rule.get("when") != "never" for job in jobs.values() for rule in job.get("rules", []))
