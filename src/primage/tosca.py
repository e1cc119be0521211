"""TOSCA templates: loading, input values (and the constraints they feed) and rendering.

The types a template can use and the documents it imports are in tosca_types; the
semantic checks in tosca_semantics. A template author gets every finding as file, line
or field, and what was expected.
Rendering applies input values as the inputs' defaults (what IM and the EC3 portal read)
and makes imports and artifact repositories absolute: `local` points them at this
checkout (offline validation, a local IM), `release` at the pinned release of the
repository (upload to IM or the EC3 portal).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import paths, release, tosca_types, yamlio
from .errors import PrimageError, Problem

SECRET_INPUT = re.compile(r"(^|_)(token|password|secret|private_key)$")
ARTIFACT_MODES = ("local", "release")
# Why a broken constraint fails the check although IM translates the template: nothing on
# the way to the cloud looks at constraints of inputs.
UNCHECKED_CONSTRAINT = " (tosca-parser and IM do not check it: the deployment would get a value the template rules out)"


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


def _phrase_type_error(kind: str, value: Any) -> str | None:
    """Why `value` is not of TOSCA type `kind`, said for a template author, or None."""
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


def _tosca_parser_verdict(check) -> str | None:
    """What tosca-parser says against a value (its message), or None when it accepts it."""
    import toscaparser.tosca_template  # noqa: F401  (loads the modules its validators depend on)
    from toscaparser.common.exception import ExceptionCollector

    was_collecting = ExceptionCollector.collecting
    ExceptionCollector.stop()  # raise at the first finding instead of collecting it
    try:
        check()
    except Exception as exc:  # tosca-parser raises its own exception classes
        text = str(exc)
        return text.split(": ", 1)[-1] if ": " in text[:40] else text
    finally:
        ExceptionCollector.collecting = was_collecting
    return None


def type_error(kind: str, value: Any, types: tosca_types.TypeCatalog | None = None, entry_schema=None) -> str | None:
    """Why `value` is not of TOSCA type `kind`, or None when it is.

    tosca-parser decides (it accepts "2" for an integer, as IM then does); the message is
    ours where we have a clearer one."""
    from toscaparser.dataentity import DataEntity

    custom = types.custom_definitions() if types else None
    verdict = _tosca_parser_verdict(lambda: DataEntity.validate_datatype(kind, value, entry_schema, custom))
    if verdict is None:
        return None
    return _phrase_type_error(kind, value) or verdict


def _as_tosca_value(kind: str, value: Any) -> Any:
    """The value tosca-parser goes on with once it has accepted it: "4" for an integer is 4."""
    if isinstance(value, str) and not isinstance(value, bool):
        if kind == "integer":
            with contextlib.suppress(ValueError):
                return int(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value


def constraint_error(name: str, kind: str, constraints: list, value: Any) -> str | None:
    """First constraint `value` breaks, in tosca-parser's own words, or None."""
    from toscaparser.elements.constraints import Constraint

    value = _as_tosca_value(kind, value)
    for spec in constraints or []:

        def validate(spec=spec):
            # A value tosca-parser cannot compare (it never gets that far itself): no verdict.
            with contextlib.suppress(TypeError):
                Constraint(name, kind, spec).validate(value)

        verdict = _tosca_parser_verdict(validate)
        if verdict:
            return verdict
    return None


def input_required(definition: dict) -> bool:
    return definition.get("required", True) is not False and "default" not in definition


def validate_inputs(
    tpl: Template, values: dict[str, InputValue], require_all: bool = True, types: tosca_types.TypeCatalog | None = None
) -> list[Problem]:
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
        error = type_error(kind, value, types, definition.get("entry_schema"))
        if error is None:
            error = constraint_error(name, kind, definition.get("constraints") or [], value)
            if error:
                error += UNCHECKED_CONSTRAINT
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


def render(
    tpl: Template,
    values: dict[str, InputValue],
    artifacts: str = "local",
    validate: bool = True,
    url_map: tosca_types.UrlMap | None = None,
) -> dict:
    """The upload-ready document: inputs applied, imports and repositories absolute.

    `local` makes every import and URL with a local copy (this checkout, `url_map`) point at
    that copy, for the tools to read offline; `release` points this repository's own files
    at the pinned release, for upload."""
    if artifacts not in ARTIFACT_MODES:
        raise PrimageError(f"--artifacts must be one of {', '.join(ARTIFACT_MODES)}, got '{artifacts}'")
    problems = input_problems(tpl, values, types=template_types(tpl, url_map)) if validate else []
    if problems:
        raise RenderError(problems)
    data = apply_inputs(tpl.data, values)
    if artifacts == "local":
        data = tosca_types.localize(data, tpl.path.parent, url_map, paths.state_dir() / "localized-imports")
    else:
        _point_imports_at_release(tpl, data)
    pin = release.current()
    for name, repo in (data.get("repositories") or {}).items():
        url = repo.get("url") if isinstance(repo, dict) else repo
        if isinstance(url, str) and url.startswith(pin.repository):
            new_url = f"file://{paths.root()}/" if artifacts == "local" else pin.raw_base
            if isinstance(repo, dict):
                repo["url"] = new_url
            else:
                data["repositories"][name] = new_url
    return data


def _point_imports_at_release(tpl: Template, data: dict) -> None:
    """Relative imports of this repository's files become URLs of the pinned release."""
    pin = release.current()
    imports = data.get("imports") or []
    for index, entry in enumerate(imports):
        location, _ = tosca_types.import_location(entry)
        if not location or tosca_types.is_url(location):
            continue
        target = (tpl.path.parent / location).resolve()
        try:
            relative_path = target.relative_to(paths.root())
        except ValueError:
            raise PrimageError(
                f"import '{location}' is outside the repository, so it has no release URL; "
                "render with --artifacts local or import it by URL",
                file=tpl.display,
                line=tpl.line("imports", index),
            ) from None
        tosca_types.set_import(imports, index, pin.raw_url(str(relative_path)))


def template_types(tpl: Template, url_map: tosca_types.UrlMap | None = None) -> tosca_types.TypeCatalog:
    """The types the template can use (normative, its own, its imports')."""
    return tosca_types.catalog(tpl.data, tpl.path.parent, tpl.display, url_map)


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


def _fed_properties(tpl: Template, types: tosca_types.TypeCatalog):
    """(node, capability or None, property, input name, property definition) of every node or
    capability property whose value is a get_input."""
    for node_name, node in tpl.node_templates.items():
        node = node or {}
        node_type = node.get("type")
        definitions = types.merged(node_type, "node_types", "properties")
        for prop, value in (node.get("properties") or {}).items():
            if isinstance(value, dict) and isinstance(value.get("get_input"), str):
                yield node_name, None, prop, value["get_input"], definitions.get(prop) or {}
        capability_defs = types.merged(node_type, "node_types", "capabilities")
        for capability, assignment in (node.get("capabilities") or {}).items():
            declared = capability_defs.get(capability) or {}
            capability_type = declared.get("type") if isinstance(declared, dict) else None
            definitions = types.merged(capability_type, "capability_types", "properties")
            if isinstance(declared, dict) and isinstance(declared.get("properties"), dict):
                definitions.update(declared["properties"])
            for prop, value in ((assignment or {}).get("properties") or {}).items():
                if isinstance(value, dict) and isinstance(value.get("get_input"), str):
                    yield node_name, capability, prop, value["get_input"], definitions.get(prop) or {}


def property_constraint_problems(
    tpl: Template, values: dict[str, InputValue], types: tosca_types.TypeCatalog | None = None
) -> list[Problem]:
    """Constraints of node and capability properties set from inputs, checked on the resolved values.

    tosca-parser does not apply a property's constraints when its value is a get_input,
    so an image tagged `latest` or a bad port would reach IM unnoticed."""
    problems = []
    types = types or template_types(tpl)
    for node_name, capability, prop, name, definition in _fed_properties(tpl, types):
        if name in values:
            given = values[name]
            resolved, file, line = given.value, given.file or "", given.line
        elif name in tpl.inputs and "default" in (tpl.inputs[name] or {}):
            resolved, file, line = tpl.inputs[name]["default"], tpl.display, tpl.input_line(name)
        else:
            continue
        error = constraint_error(prop, definition.get("type", "string"), definition.get("constraints") or [], resolved)
        if not error:
            continue
        if "does not match pattern" in error and definition.get("description"):
            # A regular expression tells users little; the property's description says what it wants.
            error = re.sub(
                r'does not match pattern ".*"\.?$',
                f"is not valid: expected {definition['description'].strip().rstrip('.')}.",
                error,
            )
        error += UNCHECKED_CONSTRAINT
        where = f"property '{prop}' of " + (f"capability '{capability}' of " if capability else "")
        problems.append(Problem(file, f"input '{name}' ({where}node '{node_name}'): {error}", line, name))
    return problems


def input_problems(
    tpl: Template,
    values: dict[str, InputValue],
    require_all: bool = True,
    types: tosca_types.TypeCatalog | None = None,
) -> list[Problem]:
    """Everything wrong with a set of input values, once per input."""
    types = types or template_types(tpl)
    problems = validate_inputs(tpl, values, require_all, types)
    reported = {p.field for p in problems}
    problems += [p for p in property_constraint_problems(tpl, values, types) if p.field not in reported]
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
