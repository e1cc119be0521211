"""yamllint, strict, with the repository's configuration, on every YAML file of a piece."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .. import paths
from ..errors import Problem
from . import Result, from_problems


@cache
def _config():
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(file=str(paths.root() / ".yamllint"))


def lint_file(path: Path) -> list[Problem]:
    from yamllint import linter

    text = path.read_text(encoding="utf-8")
    display = paths.relative(path)
    return [
        Problem(display, f"{p.desc} [yamllint {p.rule or 'syntax'}]", p.line)
        for p in linter.run(text, _config(), str(path))
    ]


def check_files(*files: Path) -> Result:
    problems: list[Problem] = []
    for path in files:
        problems.extend(lint_file(path))
    return from_problems("yamllint", problems)
