"""What an image folder declares: image.yml (schema-checked) and its Dockerfile's FROM lines.

An image folder is `<images dir>/<dir>/` holding `image.yml` and a `Dockerfile`; `containers/`
is the images dir of the repository (its `base/` folder declares base images, not an image).
Every problem names the file and line a developer has to edit.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema

from .. import paths, yamlio
from ..errors import PrimageError, Problem

IMAGE_FILE = "image.yml"
DOCKERFILE = "Dockerfile"
# The build argument that carries the exact application reference into a variant layer.
APP_IMAGE_ARG = "APP_IMAGE"
VARIANT_SEPARATOR = "+"  # segmentation+onedata: the onedata variant of the segmentation image
_SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data" / "image.schema.json"
_DIR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+]([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@cache
def schema() -> dict:
    return json.loads(_SCHEMA_FILE.read_text(encoding="utf-8"))


def build_arg_name(directory: str) -> str:
    """The build argument that carries the exact tag of image folder `directory`: IMAGING_IMAGE."""
    return directory.upper().replace("-", "_") + "_IMAGE"


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    arguments: str  # continuation lines joined, comments dropped
    line: int  # where the instruction starts


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their first line, as the Dockerfile parser sees them (escape directive,
    line continuations, comment lines inside a continuation)."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:  # parser directives come first, before any comment or instruction
        directive = re.match(r"^#\s*escape\s*=\s*(\S)\s*$", line, re.I)
        if directive:
            escape = directive.group(1)
            break
        if not re.match(r"^#\s*\w+\s*=", line):
            break
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith(escape):
            pending.append(stripped[: -len(escape)])
            continue
        pending.append(stripped)
        instructions.append(_instruction(" ".join(part.strip() for part in pending), start))
        pending = []
    if pending:
        instructions.append(_instruction(" ".join(part.strip() for part in pending), start))
    return instructions


def _instruction(text: str, line: int) -> Instruction:
    keyword, _, arguments = text.partition(" ")
    return Instruction(keyword.upper(), arguments.strip(), line)


@dataclass(frozen=True)
class BaseReference:
    """One FROM: the image as written, what it is with the ARG defaults applied, its stage name."""

    written: str
    resolved: str | None  # None when a variable has no default
    stage: str | None
    line: int
    variable: str | None  # set when the whole reference is one variable: FROM ${IMAGING_IMAGE}


def meta_arguments(instructions: list[Instruction]) -> dict[str, str | None]:
    """ARGs declared before the first FROM (the only ones a FROM can use): name -> default."""
    declared: dict[str, str | None] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            for item in instruction.arguments.split():
                name, has_default, default = item.partition("=")
                declared[name] = default.strip("\"'") if has_default else None
    return declared


def declared_arguments(instructions: list[Instruction]) -> dict[str, str | None]:
    """Every ARG of the Dockerfile, in any stage: name -> its last default."""
    declared: dict[str, str | None] = {}
    for instruction in instructions:
        if instruction.keyword == "ARG":
            for item in instruction.arguments.split():
                name, has_default, default = item.partition("=")
                declared[name] = default.strip("\"'") if has_default else declared.get(name)
    return declared


def base_references(instructions: list[Instruction]) -> list[BaseReference]:
    arguments = meta_arguments(instructions)
    found = []
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        words = [w for w in instruction.arguments.split() if not w.startswith("--")]
        if not words:
            found.append(BaseReference("", None, None, instruction.line, None))
            continue
        written = words[0]
        stage = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
        whole = _VARIABLE.fullmatch(written)
        variable = (whole.group(1) or whole.group(3)) if whole else None
        found.append(BaseReference(written, _substitute(written, arguments), stage, instruction.line, variable))
    return found


def _substitute(text: str, arguments: dict[str, str | None]) -> str | None:
    unresolved = False

    def value(match: re.Match) -> str:
        nonlocal unresolved
        name = match.group(1) or match.group(3)
        given = arguments.get(name)
        if given:
            return given
        if match.group(2) is not None and "-" in match.group(0):
            return match.group(2)
        unresolved = True
        return ""

    result = _VARIABLE.sub(value, text)
    return None if unresolved else result


def pin_problem(reference: str) -> str | None:
    """Why a base image reference is not pinned, or None when it is (a tag other than latest, or a digest)."""
    if reference == "scratch" or "@sha256:" in reference:
        return None
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"FROM {reference} is unpinned: name a version tag ({reference}:<version>) or a digest"
    if last.rsplit(":", 1)[1] == "latest":
        return f"FROM {reference}: 'latest' is no pin; name a version tag or a digest"
    return None


# --------------------------------------------------------------------------- image.yml


@dataclass(frozen=True)
class VariantLayer:
    """What `variant:` of a layer's image.yml declares."""

    suffix: str
    apt_source: dict[str, str] = field(default_factory=dict)  # url, suite, ... -> the build argument
    stub_packages: list[str] = field(default_factory=list)  # folders relative to the repository root

    @property
    def has_test_build(self) -> bool:
        return bool(self.apt_source and self.stub_packages)


@dataclass
class Image:
    """One image folder, read from its image.yml (a variant layer when it declares `variant`)."""

    folder: Path
    name: str
    version: str
    description: str
    requires: list[str] = field(default_factory=list)
    unit: list[str] | None = None
    lines: yamlio.LineIndex | None = None
    variants: list[str] = field(default_factory=list)
    layer: VariantLayer | None = None

    @property
    def directory(self) -> str:
        return self.folder.name

    @property
    def is_layer(self) -> bool:
        return self.layer is not None

    @property
    def spec_file(self) -> Path:
        return self.folder / IMAGE_FILE

    @property
    def dockerfile(self) -> Path:
        return self.folder / DOCKERFILE

    @property
    def build_arg(self) -> str:
        return build_arg_name(self.directory)

    def line_of(self, *path) -> int | None:
        return self.lines.line_of(*path) if self.lines else None

    def instructions(self) -> list[Instruction]:
        return parse_dockerfile(self.dockerfile.read_text(encoding="utf-8", errors="replace"))


@dataclass
class Variant(Image):
    """An application image with a variant layer on top: built from the layer's folder FROM the
    application's exact tag, named after the application, tagged <application tag>-<suffix>."""

    application: Image | None = None
    base: Image | None = None  # the layer's own image folder

    @property
    def directory(self) -> str:
        return f"{self.application.directory}{VARIANT_SEPARATOR}{self.base.directory}"

    @property
    def suffix(self) -> str:
        return self.base.layer.suffix


def variant_of(application: Image, layer: Image) -> Variant:
    return Variant(
        folder=layer.folder,
        name=application.name,
        version=application.version,
        description=f"{application.description} ({layer.directory} variant)",
        requires=[application.directory],
        unit=layer.unit,
        lines=layer.lines,
        application=application,
        base=layer,
    )


def _schema_problems(data, lines: yamlio.LineIndex, display: str) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        where = list(error.absolute_path)
        if error.validator == "additionalProperties":
            known = list(error.schema.get("properties", {}))
            for key in [key for key in error.instance if key not in known]:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(
                    Problem(
                        display,
                        f"unknown key '{key}'{hint}; expected keys: {', '.join(known)}",
                        lines.line_of(*where, key),
                        ".".join(str(p) for p in [*where, key]),
                    )
                )
            continue
        field_name = ".".join(str(p) for p in where) or None
        problems.append(Problem(display, _schema_message(error), lines.line_of(*where), field_name))
    return problems


def _schema_message(error: jsonschema.ValidationError) -> str:
    expected = error.schema.get("description", "")
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        wanted = error.schema["properties"].get(name, {}).get("description", "")
        return f"'{name}' is required: {wanted}"
    if error.validator == "uniqueItems":
        return f"the list repeats an entry: {error.instance}"
    parent = error.parent.schema.get("description", "") if error.parent else ""
    return f"expected {expected or parent or error.schema}, got {json.dumps(error.instance)}"


def load(folder: Path) -> tuple[Image | None, list[Problem]]:
    """The image of `folder` and the problems of its image.yml (None when it cannot be used)."""
    spec_file = folder / IMAGE_FILE
    display = paths.relative(spec_file)
    problems: list[Problem] = []
    if not _DIR_NAME.match(folder.name):
        problems.append(
            Problem(
                paths.relative(folder),
                "an image folder name is lower-case letters, digits, '-' and '_' "
                "(it names the build argument <DIR>_IMAGE)",
            )
        )
    if not (folder / DOCKERFILE).is_file():
        problems.append(Problem(paths.relative(folder / DOCKERFILE), "the image folder has no Dockerfile"))
    if not spec_file.is_file():
        problems.append(Problem(display, "the image folder has no image.yml (copy a neighbour's)"))
        return None, problems
    try:
        data, lines = yamlio.load_file(spec_file)
    except PrimageError as exc:
        return None, [*problems, exc.problem]
    if not isinstance(data, dict):
        return None, [*problems, Problem(display, "image.yml must be a mapping (name, version, description, ...)", 1)]
    schema_problems = _schema_problems(data, lines, display)
    if schema_problems:
        return None, problems + schema_problems
    test = data.get("test") or {}
    variant = data.get("variant")
    image = Image(
        folder=folder,
        name=data["name"],
        version=data["version"],
        description=data["description"],
        requires=list(data.get("requires") or []),
        unit=test.get("unit"),
        lines=lines,
        variants=list(data.get("variants") or []),
        layer=VariantLayer(
            variant["suffix"], dict(variant.get("apt_source") or {}), list(variant.get("stub_packages") or [])
        )
        if variant is not None
        else None,
    )
    return image, problems + layer_spec_problems(image, display)


def layer_spec_problems(image: Image, display: str) -> list[Problem]:
    """A variant layer is built on the images that list it: it requires nothing itself, has no
    variants of its own, and declares its apt source and its stub packages together."""
    if not image.is_layer:
        return []
    problems = [
        Problem(
            display,
            f"a variant layer takes no '{key}': it is built FROM each image that lists it in 'variants' "
            f"(through ${{{APP_IMAGE_ARG}}})",
            image.line_of(key),
            key,
        )
        for key, value in (("requires", image.requires), ("variants", image.variants))
        if value
    ]
    if bool(image.layer.apt_source) != bool(image.layer.stub_packages):
        given, missing = ("apt_source", "stub_packages") if image.layer.apt_source else ("stub_packages", "apt_source")
        problems.append(
            Problem(
                display,
                f"variant.{given} without variant.{missing}: a test build points the apt source at a "
                "repository of the stub packages, so it needs both",
                image.line_of("variant", given),
                f"variant.{given}",
            )
        )
    for index, package in enumerate(image.layer.stub_packages):
        if not (paths.root() / package / "package.yml").is_file():
            problems.append(
                Problem(
                    display,
                    f"stub package folder {package} has no package.yml (paths are relative to the repository root)",
                    image.line_of("variant", "stub_packages", index),
                    "variant.stub_packages",
                )
            )
    return problems


# --------------------------------------------------------------------------- a folder of images


def is_image_folder(folder: Path) -> bool:
    return folder.is_dir() and ((folder / IMAGE_FILE).exists() or (folder / DOCKERFILE).exists())


def image_folders(images_dir: Path) -> list[Path]:
    return sorted(folder for folder in images_dir.iterdir() if is_image_folder(folder)) if images_dir.is_dir() else []


@dataclass
class ImageSet:
    """Every image folder of one images dir (containers/ by default) with every problem found."""

    images_dir: Path
    images: dict[str, Image]
    problems: dict[str, list[Problem]]  # image folder name -> its problems

    def all_problems(self, directories: list[str] | None = None) -> list[Problem]:
        wanted = directories if directories is not None else list(self.problems)
        return [problem for directory in wanted for problem in self.problems.get(directory, [])]


def load_set(images_dir: Path | None = None) -> ImageSet:
    images_dir = Path(images_dir) if images_dir else paths.containers_dir()
    images: dict[str, Image] = {}
    problems: dict[str, list[Problem]] = {}
    for folder in image_folders(images_dir):
        image, found = load(folder)
        problems[folder.name] = found
        if image is not None:
            images[folder.name] = image
    for directory, image in images.items():
        problems[directory] += requirement_problems(image, images, images_dir)
        problems[directory] += variants_problems(image, images, images_dir)
        if image.dockerfile.is_file():
            problems[directory] += (
                layer_dockerfile_problems(image) if image.is_layer else dockerfile_problems(image, images)
            )
    for directory, cycle in _cycles(images).items():
        image = images[directory]
        problems[directory].append(
            Problem(
                paths.relative(image.spec_file),
                f"requires form a cycle: {' -> '.join(cycle)}; an image cannot be built on itself",
                image.line_of("requires"),
                "requires",
            )
        )
    return ImageSet(images_dir, images, problems)


def requirement_problems(image: Image, images: dict[str, Image], images_dir: Path) -> list[Problem]:
    problems = []
    for index, required in enumerate(image.requires):
        if required in images and images[required].is_layer:
            problems.append(
                Problem(
                    paths.relative(image.spec_file),
                    f"requires '{required}', a variant layer: list it in 'variants' to get the image with the "
                    "layer on top",
                    image.line_of("requires", index),
                    "requires",
                )
            )
        elif required not in images and not is_image_folder(images_dir / required):
            problems.append(
                Problem(
                    paths.relative(image.spec_file),
                    f"requires '{required}', but there is no image folder {paths.relative(images_dir / required)}/",
                    image.line_of("requires", index),
                    "requires",
                )
            )
    return problems


def variants_problems(image: Image, images: dict[str, Image], images_dir: Path) -> list[Problem]:
    problems = []
    for index, name in enumerate(image.variants):
        where = {"line": image.line_of("variants", index), "field": "variants"}
        if name not in images and not is_image_folder(images_dir / name):
            problems.append(
                Problem(
                    paths.relative(image.spec_file),
                    f"variants names '{name}', but there is no image folder {paths.relative(images_dir / name)}/",
                    **where,
                )
            )
        elif name in images and not images[name].is_layer:
            problems.append(
                Problem(
                    paths.relative(image.spec_file),
                    f"variants names '{name}', which is an image, not a variant layer (its image.yml has no "
                    "'variant:'); an image built on another lists it in requires",
                    **where,
                )
            )
    return problems


def layer_dockerfile_problems(image: Image) -> list[Problem]:
    """A layer's Dockerfile builds FROM ${APP_IMAGE} (the pipeline passes the exact application
    tag, so it needs no default) and declares the build arguments its apt_source names."""
    display = paths.relative(image.dockerfile)
    instructions = image.instructions()
    references = base_references(instructions)
    if not references:
        return [Problem(display, "the Dockerfile has no FROM instruction", 1)]
    problems = []
    if APP_IMAGE_ARG not in meta_arguments(instructions):
        problems.append(
            Problem(
                display,
                f"a variant layer declares ARG {APP_IMAGE_ARG} before the first FROM (the pipeline passes the "
                "exact application tag in it)",
                references[0].line,
            )
        )
    if not any(reference.variable == APP_IMAGE_ARG for reference in references):
        problems.append(
            Problem(
                display,
                f"a variant layer builds FROM ${{{APP_IMAGE_ARG}}}, the application it is a variant of",
                references[0].line,
            )
        )
    for reference in references:
        if reference.variable != APP_IMAGE_ARG and reference.written.lower() not in {
            r.stage.lower() for r in references if r.stage
        }:
            problems += _external_base_problems(reference, display)
    declared = declared_arguments(instructions)
    for role, argument in image.layer.apt_source.items():
        if argument not in declared:
            problems.append(
                Problem(
                    paths.relative(image.spec_file),
                    f"variant.apt_source.{role} names the build argument {argument}, which {display} never declares",
                    image.line_of("variant", "apt_source", role),
                    f"variant.apt_source.{role}",
                )
            )
    return problems


def dockerfile_problems(image: Image, images: dict[str, Image]) -> list[Problem]:
    """FROM lines: pinned (no untagged or `latest` base), project images through ${<DIR>_IMAGE}
    and listed in requires, every requirement actually built upon."""
    display = paths.relative(image.dockerfile)
    instructions = image.instructions()
    references = base_references(instructions)
    if not references:
        return [Problem(display, "the Dockerfile has no FROM instruction", 1)]
    arguments = meta_arguments(instructions)
    by_argument = {other.build_arg: name for name, other in images.items()}
    problems, stages, used = [], set(), set()
    for reference in references:
        project = by_argument.get(reference.variable or "")
        if project is not None:
            used.add(project)
            problems += _project_base_problems(image, reference, project, arguments, display)
        elif reference.written.lower() not in stages:
            problems += _external_base_problems(reference, display)
        if reference.stage:
            stages.add(reference.stage.lower())
    for index, required in enumerate(image.requires):
        if required in images and required not in used:
            problems.append(
                Problem(
                    paths.relative(image.spec_file),
                    f"requires '{required}' but {display} never builds FROM ${{{build_arg_name(required)}}} "
                    f"(declare ARG {build_arg_name(required)}={images[required].name}:{images[required].version} "
                    "before the first FROM)",
                    image.line_of("requires", index),
                    "requires",
                )
            )
    return problems


def _project_base_problems(image, reference, project, arguments, display) -> list[Problem]:
    problems = []
    if project not in image.requires:
        problems.append(
            Problem(
                display,
                f"FROM {reference.written} builds on the project image '{project}', which "
                f"{paths.relative(image.spec_file)} does not list in requires (the build order comes from it)",
                reference.line,
            )
        )
    if reference.variable not in arguments:
        problems.append(
            Problem(
                display,
                f"FROM {reference.written}: declare ARG {reference.variable} before the first FROM",
                reference.line,
            )
        )
    elif arguments[reference.variable]:
        why = pin_problem(arguments[reference.variable])
        if why:
            problems.append(Problem(display, f"ARG {reference.variable} default: {why}", reference.line))
    return problems


def _external_base_problems(reference: BaseReference, display: str) -> list[Problem]:
    if not reference.written:
        return [Problem(display, "FROM names no image", reference.line)]
    if reference.resolved is None:
        return [
            Problem(
                display,
                f"FROM {reference.written}: a variable without default; declare ARG NAME=<image>:<tag> "
                "before the first FROM",
                reference.line,
            )
        ]
    why = pin_problem(reference.resolved)
    return [Problem(display, why, reference.line)] if why else []


def _cycles(images: dict[str, Image]) -> dict[str, list[str]]:
    """Image folder -> the requirement cycle it starts, for every image on a cycle."""
    found: dict[str, list[str]] = {}
    for start in images:
        path = [start]

        def walk(current: str, path: list[str] = path, start: str = start) -> list[str] | None:
            for required in images[current].requires if current in images else []:
                if required == start:
                    return [*path, start]
                if required in path or required not in images:
                    continue
                path.append(required)
                cycle = walk(required)
                if cycle:
                    return cycle
                path.pop()
            return None

        cycle = walk(start)
        if cycle:
            found[start] = cycle
    return found


def variant_images(image_set: ImageSet) -> dict[str, Variant]:
    """Every (image, layer) pair an image.yml asks for through `variants`, by directory key."""
    found: dict[str, Variant] = {}
    for directory in sorted(image_set.images):
        image = image_set.images[directory]
        for name in image.variants:
            layer = image_set.images.get(name)
            if layer is not None and layer.is_layer and not image.is_layer:
                variant = variant_of(image, layer)
                found[variant.directory] = variant
    return found


def selected_by(image: Image, names: list[str]) -> bool:
    """Whether naming `names` on a command line selects `image` itself (not as a requirement):
    its folder, or for a variant its key, its application or its layer."""
    if isinstance(image, Variant):
        return bool({image.directory, image.application.directory, image.base.directory} & set(names))
    return image.directory in names


def build_order(image_set: ImageSet, selected: list[str] | None = None, with_variants: bool = True) -> list[Image]:
    """The selected images (default: all) and everything they require, requirements first, each
    image followed by its variants. Naming an image selects its variants too; naming a layer
    selects every variant of it. Refuses unknown names and any problem of the images involved.
    `with_variants=False` is for callers that run the applications themselves (the local and
    cluster backends, the scenarios): the images without the layers on top of them."""
    variants = variant_images(image_set) if with_variants else {}
    layers = {directory for directory, image in image_set.images.items() if image.is_layer}
    known = sorted(set(image_set.problems) | set(variants))
    unknown = [name for name in selected or [] if name not in known]
    if unknown:
        raise PrimageError(
            f"no image folder {', '.join(unknown)} in {paths.relative(image_set.images_dir)} "
            f"(images: {', '.join(known) or 'none'})"
        )
    names = list(selected) if selected else [d for d in sorted(image_set.problems) if d not in layers]
    wanted_variants = [key for key, variant in variants.items() if not selected or selected_by(variant, names)]
    used_layers = sorted({variants[key].base.directory for key in wanted_variants})
    lonely = [name for name in names if name in layers and name not in used_layers]
    if lonely:
        raise PrimageError(
            f"{', '.join(lonely)}: a variant layer that no image lists in 'variants', so nothing to build "
            f"(add `variants: [{lonely[0]}]` to an application's image.yml)"
        )
    wanted = [name for name in names if name not in layers and name not in variants]
    wanted += [variants[key].application.directory for key in wanted_variants]
    ordered: list[str] = []
    visiting: set[str] = set()  # a requirement cycle is a problem of its own; never loop on it

    def visit(directory: str) -> None:
        if directory in ordered or directory in visiting:
            return
        visiting.add(directory)
        image = image_set.images.get(directory)
        for required in image.requires if image else []:
            if required in image_set.problems:
                visit(required)
        ordered.append(directory)

    for directory in wanted:
        visit(directory)
    # Building everything answers for every folder, unused layers included.
    problems = image_set.all_problems(None if not selected else ordered + used_layers)
    if problems:
        raise ImageProblems(problems)
    order: list[Image] = []
    for directory in ordered:
        order.append(image_set.images[directory])
        order += [variants[key] for key in wanted_variants if variants[key].application.directory == directory]
    return order


class ImageProblems(PrimageError):
    """Several problems at once: each is printed as file:line: message."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the image folders; nothing was built:\n"
            + "\n".join(f"  {problem}" for problem in problems)
        )
