"""TOSCA templates: loading, input values, rendering and the checks tosca-parser does not make.

A template author gets every finding as file, line or field, and what was expected.
Rendering applies input values as the inputs' defaults (what IM and the EC3 portal read)
and makes imports and artifact repositories absolute: `local` points them at this
checkout (offline validation, a local IM), `release` at the pinned release of the
repository (upload to IM or the EC3 portal).
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from . import paths, release, yamlio
from .errors import PrimageError, Problem

SECRET_INPUT = re.compile(r"(^|_)(token|password|secret|private_key)$")
ARTIFACT_MODES = ("local", "release")


def is_secret(name: str) -> bool:
    return bool(SECRET_INPUT.search(name))


@dataclass
class Template(paths.RepositoryFile):
    path: Path
    data: dict
    lines: yamlio.LineIndex

    @property
    def inputs(self) -> dict[str, dict]:
        return (self.data.get("topology_template") or {}).get("inputs") or {}

    @property
    def node_templates(self) -> dict[str, dict]:
        return (self.data.get("topology_template") or {}).get("node_templates") or {}

    @property
    def outputs(self) -> dict[str, dict]:
        return (self.data.get("topology_template") or {}).get("outputs") or {}

    def line(self, *path: Any) -> int | None:
        return self.lines.line_of(*path)

    def input_line(self, name: str) -> int | None:
        return self.line("topology_template", "inputs", name)

    def node_line(self, name: str, *rest: Any) -> int | None:
        return self.line("topology_template", "node_templates", name, *rest)

    def problem(self, message: str, *path: Any, field: str | None = None) -> Problem:
        return Problem(self.display, message, self.line(*path) if path else None, field)


def load(path: str | Path) -> Template:
    path = Path(path)
    data, lines = yamlio.load_file(path)
    if not isinstance(data, dict) or "tosca_definitions_version" not in data:
        raise PrimageError(
            "not a TOSCA template (expected a mapping with tosca_definitions_version)",
            file=paths.relative(path),
            line=1,
        )
    if not isinstance(data.get("topology_template"), dict):
        raise PrimageError(
            "no topology_template: a deployable template needs node templates",
            file=paths.relative(path),
            line=1,
        )
    return Template(path.resolve(), data, lines)


def is_topology(path: Path) -> bool:
    """True for a YAML file that is a TOSCA service template (not a types file or an input set)."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "tosca_definitions_version" in head and "topology_template" in path.read_text(errors="replace")


# --------------------------------------------------------------------------- input values


@dataclass
class InputValue:
    value: Any
    source: str  # where the value came from: "file:line" or "--set"
    file: str | None = None
    line: int | None = None


def read_input_files(files: Iterable[str | Path]) -> dict[str, InputValue]:
    values: dict[str, InputValue] = {}
    for file in files:
        path = Path(file)
        data, lines = yamlio.load_file(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PrimageError("an inputs file is a mapping of input name to value", file=paths.relative(path), line=1)
        if "inputs" in data and isinstance(data["inputs"], dict) and len(data) <= 2:
            data, prefix = data["inputs"], ("inputs",)  # also accept the IM dashboard's `inputs:` wrapper
        else:
            prefix = ()
        secret_names = [name for name in data if is_secret(str(name))]
        if secret_names and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PrimageError(
                f"holds the secret input {', '.join(secret_names)} but other users can read it; run: chmod 600 {path}",
                file=paths.relative(path),
            )
        for name, value in data.items():
            line = lines.line_of(*prefix, name)
            values[str(name)] = InputValue(value, f"{paths.relative(path)}:{line}", paths.relative(path), line)
    return values


def parse_set_options(options: Iterable[str]) -> dict[str, InputValue]:
    values: dict[str, InputValue] = {}
    for option in options:
        name, sep, text = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise PrimageError(f"--set expects NAME=VALUE, got '{option}'")
        if is_secret(name):
            raise PrimageError(
                f"the secret input '{name}' cannot be given with --set (command lines are "
                "visible to every user of the machine); put it in a file readable only by you "
                "and pass it with -i FILE"
            )
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        values[name] = InputValue(value, "--set", "--set", None)
    return values


def input_values(files: Iterable[str | Path], set_options: Iterable[str]) -> dict[str, InputValue]:
    """Values from input files, then --set options (later ones win)."""
    values = read_input_files(files)
    values.update(parse_set_options(set_options))
    return values


_SCALAR_UNITS = {
    "scalar-unit.size": r"(B|kB|KB|KiB|MB|MiB|GB|GiB|TB|TiB)",
    "scalar-unit.time": r"(d|h|m|s|ms|us|ns)",
    "scalar-unit.frequency": r"(Hz|kHz|MHz|GHz)",
}


def _type_error(kind: str, value: Any) -> str | None:
    """Why `value` is not of TOSCA type `kind`, or None when it is."""
    got = f"{type(value).__name__} {value!r}"
    if kind == "string":
        if not isinstance(value, str):
            return f'expected a string, got {got} (quote it: "{value}")'
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {got}"
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {got}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return f"expected true or false, got {got}"
    elif kind in _SCALAR_UNITS:
        units = _SCALAR_UNITS[kind]
        if not isinstance(value, str) or not re.fullmatch(rf"\s*[0-9.]+\s*{units}\s*", value):
            return f"expected a {kind} such as '4 GiB', got {got}"
    elif kind == "list":
        if not isinstance(value, list):
            return f"expected a list, got {got}"
    elif kind == "map":
        if not isinstance(value, dict):
            return f"expected a mapping, got {got}"
    elif kind == "version" and not re.fullmatch(r"\d+\.\d+(\.\d+)?([.-]\w+)?", str(value)):
        return f"expected a version such as 1.2.3, got {got}"
    return None


def constraint_error(name: str, kind: str, constraints: list, value: Any) -> str | None:
    """First constraint `value` breaks, in tosca-parser's own words, or None."""
    import toscaparser.tosca_template  # noqa: F401  (loads the modules constraints depend on)
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.elements.constraints import Constraint

    was_collecting = ExceptionCollector.collecting
    ExceptionCollector.stop()
    try:
        for spec in constraints or []:
            try:
                Constraint(name, kind, spec).validate(value)
            except Exception as exc:  # tosca-parser raises its own exception classes
                return str(exc).split(": ", 1)[-1] if ": " in str(exc)[:40] else str(exc)
    finally:
        ExceptionCollector.collecting = was_collecting
    return None


def input_required(definition: dict) -> bool:
    return definition.get("required", True) is not False and "default" not in definition


def validate_inputs(tpl: Template, values: dict[str, InputValue], require_all: bool = True) -> list[Problem]:
    """Unknown inputs, missing required ones (unless require_all is False), wrong types and
    broken constraints of given values and of defaults."""
    problems: list[Problem] = []
    known = tpl.inputs
    for name, given in values.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known inputs: {', '.join(known)}"
            problems.append(
                Problem(given.file or "", f"unknown input '{name}' for {tpl.display}{hint}", given.line, name)
            )
    for name, definition in known.items():
        definition = definition or {}
        if name in values:
            given = values[name]
            value, file, line = given.value, given.file or "", given.line
        elif "default" in definition:
            value, file, line = definition["default"], tpl.display, tpl.input_line(name)
        else:
            if require_all and input_required(definition):
                problems.append(
                    Problem(
                        tpl.display,
                        f"required input '{name}' has no value "
                        f"({definition.get('description', '').strip() or 'no description'}); "
                        "give it with -i FILE" + ("" if is_secret(name) else " or --set"),
                        tpl.input_line(name),
                        name,
                    )
                )
            continue
        kind = definition.get("type", "string")
        error = _type_error(kind, value)
        if error is None:
            error = constraint_error(name, kind, definition.get("constraints") or [], value)
        if error:
            problems.append(Problem(file, f"input '{name}': {error}", line, name))
    return problems


def missing_required(tpl: Template, values: dict[str, InputValue]) -> list[str]:
    return [name for name, definition in tpl.inputs.items() if name not in values and input_required(definition or {})]


# --------------------------------------------------------------------------- rendering


def apply_inputs(data: dict, values: dict[str, InputValue]) -> dict:
    rendered = copy.deepcopy(data)
    inputs = rendered["topology_template"].get("inputs") or {}
    for name, given in values.items():
        if name in inputs:
            definition = inputs[name] if isinstance(inputs[name], dict) else {}
            definition["default"] = given.value
            definition.pop("required", None)
            inputs[name] = definition
    return rendered


def _import_target(entry: Any) -> tuple[str | None, Any]:
    """(location, setter) of one `imports` entry in any of TOSCA's three spellings."""
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, dict) and len(entry) == 1:
        ((_, spec),) = entry.items()
        if isinstance(spec, str):
            return spec, None
        if isinstance(spec, dict):
            return spec.get("file"), spec
    if isinstance(entry, dict):
        return entry.get("file"), entry
    return None, None


def _set_import(imports: list, index: int, location: str) -> None:
    entry = imports[index]
    if isinstance(entry, str):
        imports[index] = location
    elif isinstance(entry, dict) and len(entry) == 1 and not isinstance(next(iter(entry.values())), dict):
        key = next(iter(entry))
        entry[key] = location
    else:
        spec = next(iter(entry.values())) if len(entry) == 1 else entry
        spec["file"] = location
        spec.pop("repository", None)


def _is_url(location: str) -> bool:
    return bool(urlparse(location).scheme) and len(urlparse(location).scheme) > 1


def local_copy(location: str) -> Path | None:
    """The checkout's file behind a URL of this repository at its pinned release, if any."""
    pin = release.current()
    if location.startswith(pin.raw_base):
        candidate = paths.root() / location[len(pin.raw_base) :]
        return candidate if candidate.is_file() else None
    return None


def render(tpl: Template, values: dict[str, InputValue], artifacts: str = "local", validate: bool = True) -> dict:
    """The upload-ready document: inputs applied, imports and repositories absolute."""
    if artifacts not in ARTIFACT_MODES:
        raise PrimageError(f"--artifacts must be one of {', '.join(ARTIFACT_MODES)}, got '{artifacts}'")
    problems = input_problems(tpl, values) if validate else []
    if problems:
        raise RenderError(problems)
    data = apply_inputs(tpl.data, values)
    pin = release.current()
    root = paths.root()
    imports = data.get("imports") or []
    for index, entry in enumerate(imports):
        location, _ = _import_target(entry)
        if not location:
            continue
        if _is_url(location):
            # This repository's own release URLs resolve to the checkout offline.
            local = local_copy(location) if artifacts == "local" else None
            if local is not None:
                _set_import(imports, index, str(local))
            continue
        target = (tpl.path.parent / location).resolve()
        if artifacts == "local":
            _set_import(imports, index, str(target))
        else:
            try:
                relative_path = target.relative_to(root)
            except ValueError:
                raise PrimageError(
                    f"import '{location}' is outside the repository, so it has no release URL; "
                    "render with --artifacts local or import it by URL",
                    file=tpl.display,
                    line=tpl.line("imports", index),
                ) from None
            _set_import(imports, index, pin.raw_url(str(relative_path)))
    for name, repo in (data.get("repositories") or {}).items():
        url = repo.get("url") if isinstance(repo, dict) else repo
        if url and url.startswith(pin.repository):
            new_url = f"file://{root}/" if artifacts == "local" else pin.raw_base
            if isinstance(repo, dict):
                repo["url"] = new_url
            else:
                data["repositories"][name] = new_url
    return data


class RenderError(PrimageError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def secret_values(tpl: Template, values: dict[str, InputValue]) -> list[str]:
    return [name for name in values if name in tpl.inputs and is_secret(name) and values[name].value]


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (created so, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------- semantic checks


@cache
def _normative_types() -> frozenset[str]:
    import toscaparser

    definition = Path(toscaparser.__file__).parent / "elements" / "TOSCA_definition.yaml"
    data = yaml.safe_load(definition.read_text())
    return frozenset(name for name, value in data.items() if isinstance(value, dict))


def imported_documents(tpl: Template) -> list[tuple[str, dict | None, str | None]]:
    """(location, parsed types document or None, problem) for every import of the template."""
    found = []
    for index, entry in enumerate(tpl.data.get("imports") or []):
        location, _ = _import_target(entry)
        if not location:
            found.append((str(entry), None, "an import needs a file"))
            continue
        if _is_url(location) and not location.startswith("file://"):
            local = local_copy(location)
            if local is None:
                found.append((location, None, None))  # remote: tosca-parser resolves it (or reports it)
                continue
            location = str(local)
        target = Path(urlparse(location).path) if location.startswith("file://") else tpl.path.parent / location
        if not target.is_file():
            found.append(
                (
                    location,
                    None,
                    f"imported file not found: {location} (looked at {target}) [imports #{index + 1}]",
                )
            )
            continue
        data, _ = yamlio.load_file(target)
        found.append((location, data if isinstance(data, dict) else {}, None))
    return found


def defined_types(tpl: Template, section: str = "node_types") -> dict[str, dict]:
    types: dict[str, dict] = dict(tpl.data.get(section) or {})
    for _, document, _ in imported_documents(tpl):
        if document:
            types.update(document.get(section) or {})
    return types


def _type_chain(name: str, types: dict[str, dict]) -> list[dict]:
    chain = []
    seen = set()
    while name in types and name not in seen:
        seen.add(name)
        chain.append(types[name] or {})
        name = (types[name] or {}).get("derived_from", "")
    return chain


def _requirement_entries(node: dict) -> list[tuple[int, str, Any]]:
    entries = []
    for index, requirement in enumerate(node.get("requirements") or []):
        if isinstance(requirement, dict):
            for name, target in requirement.items():
                entries.append((index, name, target))
    return entries


def semantic_problems(tpl: Template) -> list[Problem]:
    """Mistakes tosca-parser lets through or explains badly, and IM answers cryptically."""
    problems: list[Problem] = []
    for location, _, error in imported_documents(tpl):
        if error:
            problems.append(tpl.problem(error, "imports", field=location))
    node_types = defined_types(tpl)
    known_types = set(node_types) | _normative_types()
    nodes = tpl.node_templates
    repositories = tpl.data.get("repositories") or {}
    for name, node in nodes.items():
        node = node or {}
        node_type = node.get("type")
        if node_type not in known_types:
            custom = [t for t in node_types if t.startswith("tosca.nodes.")]
            close = difflib.get_close_matches(str(node_type), sorted(known_types), n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else f"the imported types define: {', '.join(sorted(custom)) or 'none'}"
            )
            problems.append(
                tpl.problem(
                    f"node '{name}' has unknown type '{node_type}'; {hint}",
                    "topology_template",
                    "node_templates",
                    name,
                    "type",
                    field=name,
                )
            )
            continue
        for index, requirement, target in _requirement_entries(node):
            target_node = target.get("node") if isinstance(target, dict) else target
            if isinstance(target_node, str) and target_node not in nodes and target_node not in known_types:
                problems.append(
                    tpl.problem(
                        f"requirement '{requirement}' of node '{name}' points at '{target_node}', which is not a "
                        f"node of this template (nodes: {', '.join(nodes)})",
                        "topology_template",
                        "node_templates",
                        name,
                        "requirements",
                        index,
                        field=name,
                    )
                )
        problems.extend(_artifact_problems(tpl, name, node, node_types, repositories))
        problems.extend(_front_end_group_problems(tpl, name, node, nodes))
    problems.extend(_pin_problems(tpl))
    return problems


def _artifact_problems(tpl: Template, name: str, node: dict, types: dict, repositories: dict) -> list[Problem]:
    problems = []
    artifacts: dict[str, Any] = {}
    for type_def in reversed(_type_chain(node.get("type", ""), types)):
        artifacts.update(type_def.get("artifacts") or {})
    artifacts.update(node.get("artifacts") or {})
    pin = release.current()
    for artifact_name, artifact in artifacts.items():
        if not isinstance(artifact, dict) or "repository" not in artifact:
            continue
        repository = artifact["repository"]
        if repository not in repositories:
            problems.append(
                tpl.problem(
                    f"artifact '{artifact_name}' of node '{name}' uses repository '{repository}', which the template "
                    f"does not declare under 'repositories' (declared: {', '.join(repositories) or 'none'})",
                    "topology_template",
                    "node_templates",
                    name,
                    field=name,
                )
            )
            continue
        repo = repositories[repository]
        url = repo.get("url") if isinstance(repo, dict) else repo
        if url and (url.startswith(pin.repository) or url.startswith("file://")):
            local = paths.root() / artifact["file"]
            if not local.is_file():
                problems.append(
                    tpl.problem(
                        f"artifact '{artifact_name}' of node '{name}' names {artifact['file']}, which does not exist "
                        "in this repository",
                        "topology_template",
                        "node_templates",
                        name,
                        field=name,
                    )
                )
    return problems


def _front_end_group_problems(tpl: Template, name: str, node: dict, nodes: dict) -> list[Problem]:
    group = (node.get("properties") or {}).get("front_end_group")
    if isinstance(group, str) and group not in nodes:
        return [
            tpl.problem(
                f"front_end_group '{group}' of node '{name}' names no node of this template",
                "topology_template",
                "node_templates",
                name,
                "properties",
                "front_end_group",
                field=name,
            )
        ]
    return []


def _pin_problems(tpl: Template) -> list[Problem]:
    problems = []
    pin = release.current()
    for name, repo in (tpl.data.get("repositories") or {}).items():
        url = repo.get("url") if isinstance(repo, dict) else repo
        if not isinstance(url, str) or not url.startswith(pin.repository):
            continue
        refs = pin.pinned_refs(url)
        if not refs or refs[0] in release.UNPINNED_REFS or refs[0] != pin.tag:
            problems.append(
                tpl.problem(
                    f"repository '{name}' must point at the release tag {pin.tag} (ansible/galaxy.yml version), "
                    f"got {url}",
                    "repositories",
                    name,
                    field=name,
                )
            )
    return problems


def scalable_problems(tpl: Template, values: dict[str, InputValue]) -> list[Problem]:
    """count within [min_instances, max_instances] for every scalable node, after inputs."""
    problems = []
    resolved = {
        name: (values[name].value if name in values else (d or {}).get("default")) for name, d in tpl.inputs.items()
    }

    def value_of(item: Any) -> Any:
        if isinstance(item, dict) and "get_input" in item:
            return resolved.get(item["get_input"])
        return item

    for name, node in tpl.node_templates.items():
        scalable = (((node or {}).get("capabilities") or {}).get("scalable") or {}).get("properties") or {}
        count = value_of(scalable.get("count", scalable.get("default_instances")))
        low, high = value_of(scalable.get("min_instances")), value_of(scalable.get("max_instances"))
        numbers = [v for v in (count, low, high) if isinstance(v, int) and not isinstance(v, bool)]
        if len(numbers) < 2:
            continue
        if isinstance(low, int) and isinstance(high, int) and low > high:
            problems.append(
                tpl.problem(
                    f"node '{name}': min_instances {low} is above max_instances {high}",
                    "topology_template",
                    "node_templates",
                    name,
                    field=name,
                )
            )
        if isinstance(count, int) and isinstance(high, int) and count > high:
            problems.append(
                tpl.problem(
                    f"node '{name}': count {count} is above max_instances {high} (raise the maximum or deploy fewer)",
                    "topology_template",
                    "node_templates",
                    name,
                    field=name,
                )
            )
        if isinstance(count, int) and isinstance(low, int) and count < low:
            problems.append(
                tpl.problem(
                    f"node '{name}': count {count} is below min_instances {low}",
                    "topology_template",
                    "node_templates",
                    name,
                    field=name,
                )
            )
    return problems


def property_constraint_problems(tpl: Template, values: dict[str, InputValue]) -> list[Problem]:
    """Constraints of node properties set from inputs, checked on the resolved values.

    tosca-parser does not apply a property's constraints when its value is a get_input,
    so an image tagged `latest` or a bad port would reach IM unnoticed."""
    problems = []
    types = defined_types(tpl)
    for node_name, node in tpl.node_templates.items():
        chain = _type_chain((node or {}).get("type", ""), types)
        definitions: dict[str, dict] = {}
        for type_def in reversed(chain):
            definitions.update(type_def.get("properties") or {})
        for prop, value in ((node or {}).get("properties") or {}).items():
            if not (isinstance(value, dict) and isinstance(value.get("get_input"), str)):
                continue
            name = value["get_input"]
            definition = definitions.get(prop) or {}
            if name in values:
                given = values[name]
                resolved, file, line = given.value, given.file or "", given.line
            elif name in tpl.inputs and "default" in (tpl.inputs[name] or {}):
                resolved, file, line = tpl.inputs[name]["default"], tpl.display, tpl.input_line(name)
            else:
                continue
            error = constraint_error(
                prop, definition.get("type", "string"), definition.get("constraints") or [], resolved
            )
            if error:
                if "does not match pattern" in error and definition.get("description"):
                    # A regular expression tells users little; the property's description says what it wants.
                    error = re.sub(
                        r'does not match pattern ".*"\.?$',
                        f"is not valid: expected {definition['description'].strip().rstrip('.')}.",
                        error,
                    )
                problems.append(
                    Problem(file, f"input '{name}' (property '{prop}' of node '{node_name}'): {error}", line, name)
                )
    return problems


def input_problems(tpl: Template, values: dict[str, InputValue], require_all: bool = True) -> list[Problem]:
    """Everything wrong with a set of input values, once per input."""
    problems = validate_inputs(tpl, values, require_all)
    reported = {p.field for p in problems}
    problems += [p for p in property_constraint_problems(tpl, values) if p.field not in reported]
    return problems + scalable_problems(tpl, values)


@dataclass
class InputCase:
    """One input set of `tosca/ci/<template>-<case>.yaml`."""

    template: Path
    path: Path
    case: str

    @property
    def name(self) -> str:
        return f"{self.template.stem}-{self.case}"


def input_cases() -> list[InputCase]:
    cases = []
    templates = {p.stem: p for p in sorted(paths.tosca_dir().glob("*.yaml"))}
    ci_dir = paths.tosca_dir() / "ci"
    for case_file in sorted(ci_dir.glob("*.yaml")):
        owner = next(
            (stem for stem in sorted(templates, key=len, reverse=True) if case_file.stem.startswith(stem + "-")),
            None,
        )
        if owner is None:
            raise PrimageError(
                f"input case belongs to no template: name it <template>-<case>.yaml "
                f"(templates: {', '.join(templates)})",
                file=paths.relative(case_file),
            )
        cases.append(InputCase(templates[owner], case_file, case_file.stem[len(owner) + 1 :]))
    return cases
