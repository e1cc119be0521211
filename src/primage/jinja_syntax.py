"""Jinja syntax of templates: parsed with Ansible's extensions, never rendered.

Used by the role checks and by `primage lint jinja`; it sits below both so that the
checks never import a command.
"""

from __future__ import annotations

from pathlib import Path

from . import paths
from .errors import Problem


def jinja_problems(path: Path) -> list[Problem]:
    import jinja2

    # Only parsed, never rendered: autoescaping does not apply.
    environment = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])  # noqa: S701
    try:
        environment.parse(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(paths.relative(path), f"Jinja syntax error: {exc.message}", exc.lineno)]
    return []
