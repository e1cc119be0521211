"""Ansible roles of the collection: discovery, option documentation, and the agreement checks
between `defaults/main.yml`, `meta/argument_specs.yml` and the role README."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths, yamlio
from .errors import Problem

BEGIN_MARK = "<!-- BEGIN OPTIONS: generated from meta/argument_specs.yml by `primage docs`; do not edit -->"
END_MARK = "<!-- END OPTIONS -->"


@dataclass
class Role:
    name: str
    path: Path

    @property
    def specs_file(self) -> Path:
        return self.path / "meta" / "argument_specs.yml"

    @property
    def defaults_file(self) -> Path:
        return self.path / "defaults" / "main.yml"

    @property
    def readme(self) -> Path:
        return self.path / "README.md"

    def scenarios(self) -> list[Path]:
        return sorted(p.parent for p in (self.path / "molecule").glob("*/molecule.yml"))

    def main_options(self) -> dict[str, dict]:
        specs, _ = yamlio.load_file(self.specs_file)
        entry = ((specs or {}).get("argument_specs") or {}).get("main") or {}
        return entry.get("options") or {}

    def defaults(self) -> dict[str, Any]:
        if not self.defaults_file.exists():
            return {}
        data, _ = yamlio.load_file(self.defaults_file)
        return data or {}


def discover() -> list[Role]:
    roles_dir = paths.ansible_dir() / "roles"
    return [Role(p.name, p) for p in sorted(roles_dir.iterdir()) if (p / "tasks" / "main.yml").exists()]


def find(name: str) -> Role:
    from .errors import PrimageError

    for role in discover():
        if role.name == name:
            return role
    known = ", ".join(r.name for r in discover())
    raise PrimageError(f"no role named '{name}' (known: {known})", file="ansible/roles")


def _literal(value: Any) -> str:
    if value is None:
        return ""
    return f"`{json.dumps(value)}`"


def options_markdown(role: Role) -> str:
    """The README options section, generated from the argument specs."""
    rows = ["| Option | Type | Required | Default | Description |", "| --- | --- | --- | --- | --- |"]
    for name, spec in role.main_options().items():
        description = spec.get("description", "")
        if isinstance(description, list):
            description = " ".join(description)
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = f"list of {spec['elements']}"
        choices = spec.get("choices")
        if choices:
            description += " One of: " + ", ".join(f"`{c}`" for c in choices) + "."
        if spec.get("no_log"):
            description += " Secret: never logged."
        default = _literal(spec["default"]) if "default" in spec else ""
        required = "yes" if spec.get("required") else "no"
        description = " ".join(str(description).split()).replace("|", "\\|")
        rows.append(f"| `{name}` | {kind} | {required} | {default} | {description} |")
    return "\n".join([BEGIN_MARK, "", *rows, "", END_MARK])


def readme_with_options(role: Role) -> str | None:
    """README text with a fresh options section, or None when the README has no markers."""
    text = role.readme.read_text(encoding="utf-8") if role.readme.exists() else ""
    if BEGIN_MARK not in text or END_MARK not in text:
        return None
    head, rest = text.split(BEGIN_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    return head + options_markdown(role) + tail


def agreement_problems(role: Role) -> list[Problem]:
    """Where defaults, argument specs and README disagree: one Problem each."""
    problems: list[Problem] = []
    rel = paths.relative
    prefix = f"{role.name}_"
    if not role.specs_file.exists():
        return [Problem(rel(role.specs_file), "missing: every role documents its options here")]
    options = role.main_options()
    defaults = role.defaults()
    _, spec_lines = yamlio.load_file(role.specs_file)
    _, default_lines = yamlio.load_file(role.defaults_file) if role.defaults_file.exists() else (None, None)
    for name in defaults:
        if not name.startswith(prefix):
            problems.append(
                Problem(
                    rel(role.defaults_file),
                    f"variable '{name}' lacks the role prefix '{prefix}'",
                    default_lines.line_of(name),
                    name,
                )
            )
        if name not in options:
            problems.append(
                Problem(
                    rel(role.defaults_file),
                    f"'{name}' has a default but is not in meta/argument_specs.yml",
                    default_lines.line_of(name),
                    name,
                )
            )
    for name, spec in options.items():
        line = spec_lines.line_of("argument_specs", "main", "options", name)
        if not name.startswith(prefix):
            problems.append(
                Problem(rel(role.specs_file), f"option '{name}' lacks the role prefix '{prefix}'", line, name)
            )
        if not spec.get("description"):
            problems.append(Problem(rel(role.specs_file), f"option '{name}' has no description", line, name))
        if "type" not in spec:
            problems.append(Problem(rel(role.specs_file), f"option '{name}' has no type", line, name))
        if spec.get("required"):
            if name in defaults:
                problems.append(
                    Problem(
                        rel(role.defaults_file),
                        f"'{name}' is required, so it must have no default",
                        default_lines.line_of(name),
                        name,
                    )
                )
            continue
        if name not in defaults:
            problems.append(
                Problem(
                    rel(role.specs_file),
                    f"option '{name}' is not required but has no value in defaults/main.yml",
                    line,
                    name,
                )
            )
        elif "default" in spec and spec["default"] != defaults[name]:
            problems.append(
                Problem(
                    rel(role.specs_file),
                    f"default of '{name}' is {spec['default']!r} here but {defaults[name]!r} in defaults/main.yml",
                    line,
                    name,
                )
            )
        elif "default" not in spec:
            problems.append(
                Problem(
                    rel(role.specs_file),
                    f"option '{name}' does not state its default (copy it from defaults/main.yml)",
                    line,
                    name,
                )
            )
    expected = readme_with_options(role)
    if expected is None:
        problems.append(
            Problem(
                rel(role.readme),
                "no generated options section (add the BEGIN/END OPTIONS markers and run `primage docs`)",
            )
        )
    elif expected != role.readme.read_text(encoding="utf-8"):
        problems.append(
            Problem(
                rel(role.readme),
                "options section is out of date with meta/argument_specs.yml; run `primage docs`",
            )
        )
    return problems
