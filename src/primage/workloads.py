"""The Kubernetes manifests of the applications, rendered from their one source: the role templates.

An application is a role of the collection that includes `primage.platform.kubernetes_app`
(htc_batch, jupyter). Its manifests are every `templates/etc/primage/apps/application/*.yaml.j2`
of kubernetes_app and of the application role, in file-name order (the application's template
replaces a shared one of the same name), rendered with Ansible's own templating engine
(ansible-core's Templar, as the `template` lookup the roles use renders them) from:

    kubernetes_app defaults < application defaults < the given values and secrets
      < kubernetes_app vars/main.yml < application vars/main.yml
      < what the application hands kubernetes_app (the vars of its one include in tasks/main.yml)

which is the precedence Ansible applies when the role runs. Nothing here re-implements a value
the roles derive: labels, names, hashes and the pod wiring are all computed by the templates
and vars files themselves.

    from primage import workloads
    workload = workloads.render(
        "htc_batch",
        {"htc_batch_image": "registry.example:5000/primage/segmentation:1.0.0",
         "htc_batch_inputs": ["inputs/case-001.nii.gz"]},
        secrets={"htc_batch_registry_password": password},   # in memory only, never written
    )
    for manifest in workload.manifests:
        manifest.kind, manifest.name, manifest.definition     # dicts, ready for any client
    workloads.to_yaml(workload)                               # Secrets redacted unless asked

Values are the application role's options and kubernetes_app's site-wide ones (e.g.
`kubernetes_app_fuse_resource`), checked against their `meta/argument_specs.yml` with Ansible's own
validator (unknown names, types, choices), so a misspelt option fails naming the field. Secret options
(`no_log` in the specs) are accepted only through `secrets`; values are never treated as
templates (an input file named `{{ x }}` stays that name).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import paths, roles
from .errors import PrimageError

SHARED_ROLE = "kubernetes_app"
SHARED_ROLE_FQCN = "primage.platform.kubernetes_app"
TEMPLATES_SUBDIR = Path("templates/etc/primage/apps/application")
# Values a role finds at run time rather than takes as options; the harness takes them as given.
RUNTIME_VALUES = {"htc_batch": {"htc_batch_inputs": "the ordered input files, relative to the space"}}
REDACTED = base64.b64encode(b"REDACTED").decode()
# libyaml's parser when PyYAML has it: a list of ten thousand inputs parses ten times faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Manifest:
    """One rendered Kubernetes object and the template it came from."""

    template: str
    definition: dict

    @property
    def kind(self) -> str:
        return self.definition.get("kind", "")

    @property
    def name(self) -> str:
        return (self.definition.get("metadata") or {}).get("name", "")

    @property
    def is_secret(self) -> bool:
        return self.kind == "Secret"

    @property
    def file(self) -> str:
        """The name the role writes it under in /etc/primage/apps/<name>/."""
        return f"{self.kind.lower()}-{self.name}.yaml"


@dataclass
class Workload:
    application: str
    manifests: list[Manifest] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for manifest in self.manifests:
            counts[manifest.kind] = counts.get(manifest.kind, 0) + 1
        return counts


def applications() -> list[str]:
    """Roles whose manifests this module renders: those with templates that include kubernetes_app."""
    return [role.name for role in roles.discover() if role.name != SHARED_ROLE and _is_application(role)]


def _is_application(role: roles.Role) -> bool:
    return (role.path / TEMPLATES_SUBDIR).is_dir() and (role.path / "tasks" / "main.yml").exists()


def render(application: str, values: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> Workload:
    """The manifests of `application` for these values; secrets are used in memory only."""
    app = _application(application)
    options = {**_site_options(app), **_main_options(app.role)}
    _refuse_misplaced(app, values, secrets or {}, options)
    variables = _variables(app, values, secrets or {})
    templar = _templar(variables)
    _validate(app, options, templar, values, secrets or {})
    manifests = []
    for template in _templates(app):
        manifests.extend(_render_template(templar, variables, template))
    return Workload(application, manifests)


def space_volume() -> str:
    """Name of the pod volume that is the Onedata space in node mode (a hostPath of the node's mount).

    A node-mode workload needs nothing else of Onedata: a local backend (one machine, Docker)
    replaces this volume with a bind mount of a local folder at the same in-container path."""
    return str(_role_file(roles.find(SHARED_ROLE), "vars")["kubernetes_app_space_volume"])


def image_pattern() -> re.Pattern:
    """What kubernetes_app accepts as a pinned image (a tag other than latest, or a digest)."""
    return re.compile(str(_role_file(roles.find(SHARED_ROLE), "vars")["kubernetes_app__image_pattern"]))


def redacted(definition: dict) -> dict:
    """A Secret with every value replaced by REDACTED (base64), as the role writes it for inspection."""
    if definition.get("kind") != "Secret":
        return definition
    copied = copy.deepcopy(definition)
    copied["data"] = dict.fromkeys(copied.get("data") or {}, REDACTED)
    copied.pop("stringData", None)
    return copied


def to_yaml(workload: Workload, *, reveal_secrets: bool = False) -> str:
    """Every manifest as one multi-document YAML stream, Secrets redacted unless asked."""
    documents = [m.definition if reveal_secrets else redacted(m.definition) for m in workload.manifests]
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True, width=120)


# --- The application and its variables -----------------------------------------------------------


@dataclass(frozen=True)
class _Application:
    role: roles.Role
    shared: roles.Role


@cache
def _application(name: str) -> _Application:
    known = applications()
    if name not in known:
        raise PrimageError(
            f"'{name}' is no application with Kubernetes manifests (known: {', '.join(known) or 'none'})",
            file="ansible/roles",
        )
    return _Application(roles.find(name), roles.find(SHARED_ROLE))


def _main_options(role: roles.Role) -> dict:
    return _main_options_of(role.name, role.path)


@cache
def _main_options_of(name: str, path: Path) -> dict:
    """The argument specs of a role, read once per process (the YAML parser is the slow part)."""
    return roles.Role(name, path).main_options()


def _site_options(app: _Application) -> dict:
    """kubernetes_app's own options (not those an application passes it): site-wide, set in inventory."""
    return {name: spec for name, spec in _main_options(app.shared).items() if not spec.get("required")}


def _refuse_misplaced(app: _Application, values: Mapping, secrets: Mapping, options: dict) -> None:
    runtime = RUNTIME_VALUES.get(app.role.name, {})
    for name in values:
        if name in runtime:
            continue
        if name not in options:
            raise PrimageError(
                f"'{name}' is not an option of {app.role.name} or site-wide of {SHARED_ROLE} "
                "(see their meta/argument_specs.yml)",
                file=paths.relative(app.role.specs_file),
                field=name,
            )
        if options[name].get("no_log"):
            raise PrimageError(
                f"'{name}' is a secret: pass it in memory (secrets=...), never with the other values",
                file=paths.relative(app.role.specs_file),
                field=name,
            )
    for name in secrets:
        if not (options.get(name) or {}).get("no_log"):
            raise PrimageError(
                f"'{name}' is not a secret option of {app.role.name}",
                file=paths.relative(app.role.specs_file),
                field=name,
            )
    for name, description in runtime.items():
        given = values.get(name)
        if not isinstance(given, list | tuple) or not given or not all(isinstance(item, str) for item in given):
            raise PrimageError(f"'{name}' is needed, a non-empty list of strings: {description}", field=name)


def _variables(app: _Application, values: Mapping, secrets: Mapping) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    variables.update(_role_file(app.shared, "defaults"))
    variables.update(_role_file(app.role, "defaults"))
    variables.update(_untrusted(dict(values)))
    variables.update(_untrusted(dict(secrets)))
    variables.update(_role_file(app.shared, "vars"))
    variables.update(_role_file(app.role, "vars"))
    variables.update(_include_mapping(app))
    variables["role_path"] = str(app.shared.path)
    variables["ansible_parent_role_paths"] = [str(app.role.path)]
    return variables


def _untrusted(data: Any) -> Any:
    """Plain copies: Ansible never templates a string that is not trusted as a template."""
    return copy.deepcopy(data)


@cache
def _role_file_cached(path: Path) -> Any:
    from ansible.parsing.dataloader import DataLoader

    if not path.exists():
        return {}
    return DataLoader().load_from_file(str(path), trusted_as_template=True) or {}


def _role_file(role: roles.Role, folder: str) -> dict:
    data = _role_file_cached(role.path / folder / "main.yml")
    if not isinstance(data, Mapping):
        raise PrimageError("expected a mapping of variables", file=paths.relative(role.path / folder / "main.yml"))
    return dict(data)


def _include_mapping(app: _Application) -> dict:
    """The vars of the application's one include of kubernetes_app (main entry point)."""
    tasks_file = app.role.path / "tasks" / "main.yml"
    tasks = _role_file_cached(tasks_file) or []
    includes = [
        task
        for task in tasks
        if isinstance(task, Mapping)
        for key in ("ansible.builtin.include_role", "include_role")
        if isinstance(task.get(key), Mapping)
        and task[key].get("name") == SHARED_ROLE_FQCN
        and not task[key].get("tasks_from")
    ]
    if len(includes) != 1:
        raise PrimageError(
            f"expected exactly one include of {SHARED_ROLE_FQCN} (its main entry point), found {len(includes)}: "
            "the harness reads the values an application hands the shared role from it",
            file=paths.relative(tasks_file),
        )
    return dict(includes[0].get("vars") or {})


# --- Ansible's templating -------------------------------------------------------------------------


def _templar(variables: dict):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    return Templar(loader=DataLoader(), variables=variables)


def _validate(app: _Application, options: dict, templar, values: Mapping, secrets: Mapping) -> None:
    """The role's argument specs, as Ansible enforces them when the role starts."""
    from ansible.errors import AnsibleError
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    specs_file = paths.relative(app.role.specs_file)
    missing = [name for name, spec in options.items() if spec.get("required") and name not in {**values, **secrets}]
    if missing:
        raise PrimageError(f"{app.role.name} needs {', '.join(missing)}", file=specs_file, field=missing[0])
    try:
        given = {name: templar.template(value) for name, value in _option_values(app, options, values, secrets)}
    except AnsibleError as exc:
        raise PrimageError(f"{app.role.name}: {_ansible_message(exc)}", file=specs_file) from None
    result = ArgumentSpecValidator(_plain_specs(options)).validate(given)
    if result.error_messages:
        field_name = next((name for name in options if name in " ".join(result.error_messages)), None)
        raise PrimageError(f"{app.role.name}: " + "; ".join(result.error_messages), file=specs_file, field=field_name)


def _option_values(app: _Application, options: dict, values: Mapping, secrets: Mapping):
    defaults = {**_role_file(app.shared, "defaults"), **_role_file(app.role, "defaults")}
    for name in options:
        if name in secrets:
            yield name, secrets[name]
        elif name in values:
            yield name, values[name]
        elif name in defaults:
            yield name, defaults[name]


def _plain_specs(options: dict) -> dict:
    """The argument specs without what only documents an option."""
    keep = ("type", "elements", "required", "choices", "no_log", "options")
    return {name: {k: v for k, v in spec.items() if k in keep} for name, spec in options.items()}


def _templates(app: _Application) -> list[Path]:
    """Shared and application templates in file-name order, the application's winning a tie."""
    by_name: dict[str, Path] = {}
    for role in (app.shared, app.role):
        for path in sorted((role.path / TEMPLATES_SUBDIR).glob("*.yaml.j2")):
            by_name[path.name] = path
    return [by_name[name] for name in sorted(by_name)]


def _render_template(templar, variables: dict, template: Path) -> list[Manifest]:
    """One template as the role's `ansible.builtin.template` lookup renders it, then its documents."""
    from ansible._internal._templating import _template_vars
    from ansible._internal._templating._engine import TemplateOptions, TemplateOverrides
    from ansible.errors import AnsibleError
    from ansible.template import trust_as_template

    display = paths.relative(template)
    text = trust_as_template(template.read_text(encoding="utf-8"))
    template_vars = dict(variables)
    template_vars.update(
        _template_vars.generate_ansible_template_vars(
            path=str(template), fullpath=str(template), include_ansible_managed=True
        )
    )
    data_templar = templar.copy_with_new_env(available_variables=template_vars, searchpath=[str(template.parent)])
    options = TemplateOptions(escape_backslashes=False, overrides=TemplateOverrides.from_kwargs({"trim_blocks": True}))
    try:
        rendered = data_templar._engine.template(text, options=options)
    except AnsibleError as exc:
        raise PrimageError(_ansible_message(exc), file=display) from None
    if rendered is None:  # the engine's result for a template that renders only whitespace
        return []
    try:
        documents = [d for d in yaml.load_all(str(rendered), Loader=_YAML_LOADER) if d]
    except yaml.YAMLError as exc:
        raise PrimageError(f"the rendered template is not YAML: {exc}", file=display) from None
    return [Manifest(display, _plain(d)) for d in documents]


def _ansible_message(exc: Exception) -> str:
    """The first line of Ansible's message: the hint of `undef(hint=...)` or what was undefined."""
    message = getattr(exc, "message", None) or str(exc)
    return re.sub(r"\s+", " ", str(message).split("\n\n")[0]).strip()


def _plain(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(v) for v in data]
    return data


# --- Workload cases: value sets every rendered manifest is checked with --------------------------


@dataclass
class Case(paths.RepositoryFile):
    """A value set of an application (ansible/roles/<role>/ci/<case>.yml), helm-charts style.

    Keys: `values` (options and run-time values), `secrets` (names of secret options the harness
    fills with throwaway values: no secret lives in the repository), `generate` (run-time lists
    made from a count and a format, e.g. ten thousand inputs) and `expect` (`kinds`: how many
    objects of each kind the case renders).
    """

    path: Path
    application: str
    values: dict
    secret_names: list[str]
    expect: dict

    @property
    def name(self) -> str:
        return f"{self.application}-{self.path.stem}"

    def render(self) -> Workload:
        import secrets as random

        throwaway = {name: f"throwaway-{name}-{random.token_hex(8)}" for name in self.secret_names}
        return render(self.application, self.values, throwaway)


def cases() -> list[Case]:
    return [load_case(path) for name in applications() for path in sorted(roles.find(name).path.glob("ci/*.yml"))]


_CASE_KEYS = {"values", "secrets", "generate", "expect"}


def load_case(path: Path) -> Case:
    from . import yamlio

    display = paths.relative(path)
    data, lines = yamlio.load_file(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("values"), Mapping):
        raise PrimageError(
            "a workload case is a mapping with a 'values' mapping (see ansible/roles/*/ci/)", file=display
        )
    unknown = sorted(set(data) - _CASE_KEYS)
    if unknown:
        raise PrimageError(
            f"unknown key '{unknown[0]}' (expected {', '.join(sorted(_CASE_KEYS))})",
            file=display,
            line=lines.line_of(unknown[0]),
            field=unknown[0],
        )
    application = _case_application(path, data["values"])
    values = dict(data["values"])
    for name, spec in (data.get("generate") or {}).items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("count"), int) or "format" not in spec:
            raise PrimageError(
                "expected {count: N, format: '...{index}...'}",
                file=display,
                line=lines.line_of("generate", name),
                field=name,
            )
        values[name] = [str(spec["format"]).format(index=i) for i in range(spec["count"])]
    secret_names = data.get("secrets") or []
    if not isinstance(secret_names, list):
        raise PrimageError(
            "expected a list of secret option names", file=display, line=lines.line_of("secrets"), field="secrets"
        )
    return Case(path, application, values, [str(s) for s in secret_names], dict(data.get("expect") or {}))


def _case_application(path: Path, values: Mapping) -> str:
    """The role of the ci/ folder, else (a case outside the tree) the one its value names start with."""
    known = applications()
    if path.parent.name == "ci" and path.parent.parent.name in known:
        return path.parent.parent.name
    prefixes = {name for name in known for value in values if str(value).startswith(f"{name}_")}
    if len(prefixes) != 1:
        raise PrimageError(
            f"cannot tell the application of this case: its values must be options of one of {', '.join(known)}",
            file=paths.relative(path),
        )
    return prefixes.pop()


def is_case_file(path: Path) -> bool:
    """A YAML file shaped as a workload case (for `primage check FILE`)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return path.suffix in (".yml", ".yaml") and re.search(r"^values:\s*$", text, re.M) is not None
