"""Documentation generated from the pieces themselves, between marker lines in README files.

The project README carries the reference of every TOSCA template (inputs and outputs) and
every EC3 RADL template, and the list of the images of containers/; each role README carries
its options. `primage docs` rewrites
them; `primage docs --check` (run by the tests) fails when one is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import paths, radl, roles, tosca

TEMPLATES_BEGIN = "<!-- BEGIN TEMPLATE REFERENCE: generated from tosca/ and radl/ by `primage docs`; do not edit -->"
TEMPLATES_END = "<!-- END TEMPLATE REFERENCE -->"
IMAGES_BEGIN = "<!-- BEGIN IMAGE LIST: generated from containers/*/image.yml by `primage docs`; do not edit -->"
IMAGES_END = "<!-- END IMAGE LIST -->"


def replace_between(text: str, begin: str, end: str, body: str) -> str | None:
    """`text` with what lies between the two marker lines replaced, or None without markers."""
    if begin not in text or end not in text:
        return None
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n\n{body.strip()}\n\n{end}{tail}"


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _literal(value) -> str:
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _constraints(definition: dict) -> str:
    parts = []
    for constraint in definition.get("constraints") or []:
        for kind, value in constraint.items():
            if kind == "valid_values":
                parts.append("one of " + ", ".join(_literal(v) for v in value))
            elif kind == "in_range":
                parts.append(f"{value[0]} to {value[1]}")
            elif kind == "pattern":
                parts.append(f"matches `{value}`")
            else:
                parts.append(f"{kind.replace('_', ' ')} {value}")
    return "; ".join(parts)


def template_section(tpl: tosca.Template) -> str:
    lines = [
        f"#### `tosca/{tpl.path.name}`",
        "",
        _cell(tpl.data.get("description", "")),
        "",
        "| Input | Type | Default | Constraints | Description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, definition in tpl.inputs.items():
        definition = definition or {}
        if "default" in definition:
            default = _literal(definition["default"])
        else:
            default = "**required**" + (" (secret)" if tosca.is_secret(name) else "")
        lines.append(
            f"| `{name}` | {definition.get('type', 'string')} | {default} | "
            f"{_cell(_constraints(definition))} | {_cell(definition.get('description', ''))} |"
        )
    lines += ["", "| Output | Description |", "| --- | --- |"]
    for name, definition in tpl.outputs.items():
        lines.append(f"| `{name}` | {_cell((definition or {}).get('description', ''))} |")
    return "\n".join(lines)


def _short(tpl: radl.RadlTemplate) -> str:
    import re

    match = re.search(r"short\s*=\s*'([^']*)'", tpl.text)
    return match.group(1) if match else ""


def radl_section() -> str:
    lines = [
        "| RADL template | Kind | What it does | Features it reads (set them in a private template) |",
        "| --- | --- | --- | --- |",
    ]
    for folder in radl.template_dirs():
        for path in sorted(folder.glob("*.radl")):
            tpl = radl.load(path)
            features = ", ".join(f"`{feature}`" for _, feature in sorted(tpl.read_features()))
            lines.append(f"| `{paths.relative(path)}` | {tpl.kind} | {_cell(_short(tpl))} | {features} |")
    return "\n".join(lines)


def template_reference() -> str:
    sections = [template_section(tosca.load(path)) for path in sorted(paths.tosca_dir().glob("*.yaml"))]
    return "\n\n".join([*sections, "#### EC3 RADL templates", "", radl_section()])


def image_list() -> str:
    from .images import spec

    image_set = spec.load_set()
    if not image_set.problems:
        return "No image folder yet: add `containers/<dir>/image.yml` and its `Dockerfile`."
    lines = ["| Folder | Image | Version | Requires | Description |", "| --- | --- | --- | --- | --- |"]
    for directory in sorted(image_set.problems):
        image = image_set.images.get(directory)
        if image is None:
            lines.append(f"| `containers/{directory}/` | | | | unreadable: see `primage check {directory}` |")
            continue
        requires = ", ".join(f"`{r}`" for r in image.requires)
        name = f"`{image.name}`"
        if image.variants:
            name += "; " + ", ".join(f"`{image.name}:<tag>-{v}`" for v in image.variants)
        if image.is_layer:
            users = sorted(d for d, other in image_set.images.items() if directory in other.variants)
            name = f"variant layer: `<image>:<tag>-{image.layer.suffix}`"
            requires = "variant of " + (", ".join(f"`{d}`" for d in users) or "no image yet")
        cells = [f"`containers/{directory}/`", name, image.version, requires, _cell(image.description)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stale_documents() -> dict[Path, str]:
    """Every generated document whose text differs from what it should be: path -> new text.
    A document without its markers maps to an empty string."""
    stale: dict[Path, str] = {}
    readme = paths.root() / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    fresh = replace_between(text, TEMPLATES_BEGIN, TEMPLATES_END, template_reference())
    if fresh is not None:
        fresh = replace_between(fresh, IMAGES_BEGIN, IMAGES_END, image_list())
    if fresh != text:
        stale[readme] = fresh or ""
    for role in roles.discover():
        text = role.readme.read_text(encoding="utf-8") if role.readme.exists() else ""
        fresh = roles.readme_with_options(role)
        if fresh != text:
            stale[role.readme] = fresh or ""
    return stale
