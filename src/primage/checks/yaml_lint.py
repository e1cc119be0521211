"""yamllint with the repository's configuration, on every YAML file of a piece.

Syntax errors and duplicate keys break any YAML file. The other rules (document start,
spaces inside brackets, line length, indentation, truthy words...) are the repository's
house style: strict for its own pieces, warnings for any other file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .. import paths, yamlio
from ..errors import ERROR, WARNING, PrimageError, Problem
from . import Result, from_problems

BREAKING_RULES = (None, "key-duplicates")  # None: a syntax error


@cache
def _config():
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(file=str(paths.root() / ".yamllint"))


def _key_paths(text: str, display: str):
    """line -> the YAML key a finding on that line is about (dotted), or None."""
    try:
        _, lines = yamlio.load_text(text, display)
    except PrimageError:
        return lambda line: None

    def at(line: int) -> str | None:
        path = lines.path_at(line)
        return ".".join(str(key) for key in path) if path else None

    return at


def lint_file(path: Path, own: bool = True) -> list[Problem]:
    from yamllint import linter

    text = path.read_text(encoding="utf-8")
    display = paths.relative(path)
    problems = []
    key_at = None
    for finding in linter.run(text, _config(), str(path)):
        severity = ERROR if own or finding.rule in BREAKING_RULES else WARNING
        key_at = key_at or _key_paths(text, display)
        field = key_at(finding.line) if finding.rule else None
        message = f"{finding.desc} [yamllint {finding.rule or 'syntax'}]"
        problems.append(Problem(display, message, finding.line, field, severity))
    return problems


def check_files(*files: Path, own: bool = True) -> Result:
    """yamllint of `files`; `own`: they are the repository's pieces, held to its house style."""
    problems: list[Problem] = []
    for path in files:
        problems.extend(lint_file(path, own))
    return from_problems("yamllint", problems)
