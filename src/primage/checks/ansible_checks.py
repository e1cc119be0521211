"""Checks of roles and playbooks of the primage.platform collection."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .. import ansible_env, paths, roles
from ..errors import Problem
from ..jinja_syntax import jinja_problems
from ..pieces import Piece
from . import Context, Result, from_problems, not_run
from .yaml_lint import check_files


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def role_yamllint(piece: Piece, context: Context) -> Result:
    return check_files(*_yaml_files(piece.path))


def role_specs(piece: Piece, context: Context) -> Result:
    """defaults/main.yml, meta/argument_specs.yml and the README options table agree."""
    return from_problems("specs", roles.agreement_problems(roles.Role(piece.name, piece.path)))


def role_jinja(piece: Piece, context: Context) -> Result:
    templates = sorted(piece.path.rglob("*.j2"))
    return from_problems("jinja", [problem for template in templates for problem in jinja_problems(template)])


def ansible_lint(piece: Piece, context: Context) -> Result:
    if not (Path(sys.executable).parent / "ansible-lint").exists():
        return not_run("ansible-lint", "ansible-lint is not installed in this environment (scripts/setup.sh)")
    completed = ansible_env.run_tool(
        "ansible-lint", "--config-file", str(paths.root() / ".ansible-lint"), "--nocolor", "-f", "pep8", str(piece.path)
    )
    if completed.returncode == 0:
        return from_problems("ansible-lint", [])
    problems = []
    for line in completed.stdout.splitlines():
        match = re.match(r"^(?P<file>[^:]+):(?P<line>\d+)(?::\d+)?: (?P<rule>[\w\[\]-]+): (?P<message>.*)$", line)
        if match:
            problems.append(
                Problem(match["file"], f"{match['message']} [ansible-lint {match['rule']}]", int(match["line"]))
            )
    if not problems:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        problems.append(Problem(piece.display_path, "ansible-lint failed: " + " | ".join(tail)))
    return from_problems("ansible-lint", problems)


ROLE_CHECKS = [
    ("yamllint", role_yamllint),
    ("specs", role_specs),
    ("jinja", role_jinja),
    ("ansible-lint", ansible_lint),
]


def playbook_syntax(piece: Piece, context: Context) -> Result:
    completed = ansible_env.run_tool("ansible-playbook", "--syntax-check", "-i", "localhost,", str(piece.path))
    if completed.returncode == 0:
        return from_problems("syntax", [])
    message = " ".join(
        line.strip()
        for line in (completed.stderr or completed.stdout).splitlines()
        if line.strip() and not line.startswith("[WARNING]")
    )[:400]
    return from_problems("syntax", [Problem(piece.display_path, f"ansible-playbook --syntax-check: {message}")])


PLAYBOOK_CHECKS = [
    ("yamllint", lambda piece, context: check_files(piece.path)),
    ("syntax", playbook_syntax),
]
