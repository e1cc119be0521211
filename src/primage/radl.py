"""EC3 RADL templates: parsing in EC3's dialect, their Ansible recipes, the features they read,
and composition with the real `ec3` command (offline, `--dry-run`).

EC3 templates are written in EC3's RADL dialect (e.g. `ec3_templates contains 'x'`) and
parsed by EC3's own parser; what EC3 composes is sent to IM, so the composed RADL is
checked with IM's `radl` package.

A template is checked in its context, as EC3 composes it. EC3 finds the templates a
template includes, and the files its configure sections load (`ec3_file`), in
./templates, ~/.ec3/templates and /etc/ec3/templates; for a file outside this repository
the harness looks in the file's own folder, a `templates/` folder beside it, then EC3's
two folders (`context_dirs`). EC3 checks each system as it merges the templates in
order, so a component that adds `disk.1` is valid once a template before it gave
`disk.0`: a template alone is composed after a frame holding what a user's main and
images templates give (front and wn with an image, `deploy front 1`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import paths, release
from .errors import PrimageError, Problem

# As EC3's lexer reads a recipe: from @begin (anywhere after `configure NAME (`) to an @end
# at the start of a line.
_CONFIGURE = re.compile(r"^[ \t]*configure\s+([a-zA-Z_.][\w.-]*)\s*\(\s*@begin[^\S\n]*\n?(.*?)^@end", re.S | re.M)
_XPATH = re.compile(r"ec3_xpath:\s*/system/([\w.-]+)/([\w.-]+)")
_ROLE = re.compile(r"role:\s*['\"]?([\w]+)\.([\w]+)\.([\w]+)")
_INCLUDE = re.compile(r"^[ \t]*include\s+[\w.-]+\s*\((?:[^()']|'[^']*')*?template\s*=\s*'([^']*)'", re.M | re.S)
_DEPLOY_FRONT = re.compile(r"^[ \t]*deploy\s+front\s+1\b", re.M)
_PLACEHOLDER = re.compile(r"<[a-z_.]+>")
SECRET_FEATURE = re.compile(r"(token|password|secret)$")
THROWAWAY = "primage-check-placeholder-"


@dataclass
class Recipe:
    configure: str
    text: str
    first_line: int  # line of the recipe's first line in the template file


@dataclass
class RadlTemplate(paths.RepositoryFile):
    path: Path
    text: str
    kind: str = "?"
    recipes: list[Recipe] = field(default_factory=list)

    def includes(self) -> list[str]:
        return [name for match in _INCLUDE.finditer(self.text) for name in match.group(1).split()]

    def read_features(self) -> set[tuple[str, str]]:
        """(system, feature) pairs the recipes read with ec3_xpath."""
        return {(m.group(1), m.group(2)) for recipe in self.recipes for m in _XPATH.finditer(recipe.text)}


def load(path: Path) -> RadlTemplate:
    text = path.read_text(encoding="utf-8")
    kind = re.search(r"kind\s*=\s*'([^']+)'", text)
    recipes = [
        Recipe(match.group(1), match.group(2).rstrip("\n"), text[: match.start(2)].count("\n") + 1)
        for match in _CONFIGURE.finditer(text)
    ]
    return RadlTemplate(path.resolve(), text, kind.group(1) if kind else "?", recipes)


_BLOCK = re.compile(r"^[ \t]*(description|system|network|configure|include|deploy|contextualize)\b\s*([\w.-]*)", re.M)


def block_at(text: str, line: int | None) -> str | None:
    """The RADL block a line belongs to, as its author names it (`system front`), or None."""
    if not line:
        return None
    head = "\n".join(text.splitlines()[:line])
    blocks = list(_BLOCK.finditer(head))
    return " ".join(part for part in blocks[-1].groups() if part) if blocks else None


_EC3_ONLY_BLOCK = re.compile(r"^(description|include)\s+[\w.-]+\s*\((?:[^()']|'(?:[^'\\]|\\.)*')*\)", re.M | re.S)


@contextlib.contextmanager
def _ec3_home():
    """EC3's parser writes its tables to ~/.ec3; keep them in the harness cache."""
    home = paths.state_dir() / "ec3-home"
    (home / ".ec3").mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = previous


def _blank(match: re.Match) -> str:
    return "\n" * match.group(0).count("\n")


def ec3_parse_problems(tpl: RadlTemplate):
    """Parse with EC3's own RADL parser; return (problems, parsed RADL or None).

    Only the syntax: what a template means (a deploy of a system another template defines,
    disk.1 on a disk.0 another template gives) is checked once composed, as EC3 does.
    `description` and `include` blocks are EC3's own additions, which the ec3 command
    handles before its parser sees the rest; they are blanked (keeping line numbers)."""
    from IM2.radl.radl_parse import parse_radl as ec3_parse_radl

    try:
        with _ec3_home():
            parsed = ec3_parse_radl(_EC3_ONLY_BLOCK.sub(_blank, tpl.text))
    except Exception as exc:  # RADLParseException carries the line
        line = getattr(exc, "line", None)
        message = re.sub(r"^Line \d+: ", "", str(exc)).strip().splitlines()[0]
        token = re.search(r"LexToken\((\w+),'([^']*)'", message)
        if token:
            message = f"unexpected {token.group(2)!r}: a feature without 'and' before it, or an unbalanced parenthesis?"
        elif message == "Parse error in: None":
            message = "unexpected end of file: an unclosed parenthesis or @begin without @end?"
        return [Problem(tpl.display, f"EC3 cannot parse the template: {message}", line, block_at(tpl.text, line))], None
    return [], parsed


def defined_features(parsed) -> set[tuple[str, str]]:
    from IM2.radl.radl import system

    return {(item.getId(), name) for item in parsed.gets(system) for name in item.props}


def recipe_problems(tpl: RadlTemplate) -> list[Problem]:
    """Each recipe is YAML: a list of plays (that call existing roles of the collection) or a
    mapping of variables, which EC3 keeps as it is; and the collection is pinned."""
    problems: list[Problem] = []
    for recipe in tpl.recipes:
        try:
            content = yaml.safe_load(recipe.text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = recipe.first_line + mark.line if mark else recipe.first_line
            problems.append(
                Problem(
                    tpl.display,
                    f"recipe of configure '{recipe.configure}' is not valid YAML: {getattr(exc, 'problem', exc)}",
                    line,
                    f"configure {recipe.configure}",
                )
            )
            continue
        if content is None or isinstance(content, dict):
            continue  # empty, or variables: EC3 and IM keep them as they are
        if not isinstance(content, list) or not all(isinstance(play, dict) for play in content):
            problems.append(
                Problem(
                    tpl.display,
                    f"recipe of configure '{recipe.configure}' must be a list of plays or a mapping of variables; "
                    f"IM would drop this {type(content).__name__} and the node would not be configured",
                    recipe.first_line,
                    f"configure {recipe.configure}",
                )
            )
            continue
        problems.extend(_role_problems(tpl, recipe))
    problems.extend(pin_problems(tpl.display, tpl.text))
    return problems


def _role_problems(tpl: RadlTemplate, recipe: Recipe) -> list[Problem]:
    """Roles of this repository's collection that a recipe calls and ansible/roles/ lacks."""
    from . import ansible_env

    namespace, name = ansible_env.collection_name()
    roles_dir = paths.ansible_dir() / "roles"
    problems = []
    for offset, line_text in enumerate(recipe.text.splitlines()):
        match = _ROLE.search(line_text)
        ours = match and (match.group(1), match.group(2)) == (namespace, name)
        if ours and not (roles_dir / match.group(3) / "tasks" / "main.yml").is_file():
            problems.append(
                Problem(
                    tpl.display,
                    f"configure '{recipe.configure}' calls role "
                    f"{'.'.join(match.groups())}, which ansible/roles/ does not have",
                    recipe.first_line + offset,
                    match.group(3),
                )
            )
    return problems


def loaded_files(tpl: RadlTemplate) -> list[tuple[str, str]]:
    """(configure, file name) of every file a recipe loads with `ec3_file`."""
    found = []
    for recipe in tpl.recipes:
        try:
            content = yaml.safe_load(recipe.text)
        except yaml.YAMLError:
            continue  # the recipes check reports it

        def walk(node, configure=recipe.configure):
            if isinstance(node, dict):
                if isinstance(node.get("ec3_file"), str):
                    found.append((configure, node["ec3_file"]))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(content)
    return found


def pin_problems(display: str, text: str) -> list[Problem]:
    pin = release.current()
    problems = []
    for offset, line_text in enumerate(text.splitlines(), start=1):
        for ref in pin.pinned_refs(line_text):
            if ref != pin.tag:
                problems.append(
                    Problem(
                        display,
                        f"refers to the repository at '{ref}'; it must be the release "
                        f"tag {pin.tag} (ansible/galaxy.yml version): the collection at another ref need not "
                        "accept what the templates of the release pass its roles",
                        offset,
                        block_at(text, offset),
                    )
                )
    return problems


# --------------------------------------------------------------------------- composition


def template_dirs() -> list[Path]:
    """Where this repository's templates live: radl/ and its folders (images...), not radl/ci."""
    return [paths.radl_dir(), *sorted(p for p in paths.radl_dir().iterdir() if p.is_dir() and p.name != "ci")]


EC3_TEMPLATE_DIRS = ("~/.ec3/templates", "/etc/ec3/templates")  # where ec3 looks after ./templates


def context_dirs(path: Path) -> list[Path]:
    """Where EC3 would find what a template outside this repository includes or loads: its own
    folder (run from the folder above it, that folder is ./templates), a templates/ folder
    beside it (run from its folder), then EC3's ~/.ec3/templates and /etc/ec3/templates."""
    folder = path.resolve().parent
    return [folder, folder / "templates", *(Path(d).expanduser() for d in EC3_TEMPLATE_DIRS)]


def find_file(name: str, dirs: list[Path]) -> Path | None:
    """The first `name` in `dirs`, as EC3 takes the first it finds."""
    for folder in dirs:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_template(name: str, extra: list[Path] | None = None) -> Path | None:
    return find_file(f"{name}.radl", (extra or []) + template_dirs())


def _shown(dirs: list[Path]) -> str:
    return ", ".join(paths.relative(d) for d in dirs)


def expand(
    names: list[str], extra_dirs: list[Path] | None = None, dirs: list[Path] | None = None
) -> list[RadlTemplate]:
    """The templates EC3 will merge: the named ones and what they include, each once, found
    in `dirs` (default: `extra_dirs`, then this repository's template folders)."""
    search = dirs if dirs is not None else (extra_dirs or []) + template_dirs()
    seen: list[str] = []
    loaded: list[RadlTemplate] = []
    queue: list[tuple[str, RadlTemplate | None]] = [(name, None) for name in names]
    while queue:
        name, includer = queue.pop(0)
        if name in seen:
            continue
        seen.append(name)
        path = find_file(f"{name}.radl", search)
        if path is None:
            if includer is None:
                raise PrimageError(f"no RADL template named '{name}' (looked in {_shown(search)})")
            line = _line_naming(includer.text, name)
            raise PrimageError(
                f"includes '{name}', which is in none of the folders EC3 would look in ({_shown(search)}); "
                f"ec3 launch would stop with 'File not found'",
                file=includer.display,
                line=line,
                field=f"include {name}",
            )
        tpl = load(path)
        loaded.append(tpl)
        queue.extend((included, tpl) for included in tpl.includes())
    return loaded


def _line_naming(text: str, name: str) -> int | None:
    """The first line outside a comment that names `name`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.lstrip().startswith("#") and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", line):
            return number
    return None


def loaded_file_paths(templates: list[RadlTemplate], dirs: list[Path]) -> tuple[dict[str, Path], list[Problem]]:
    """The files the recipes load (`ec3_file`), found in `dirs`, and a problem for each one missing."""
    found: dict[str, Path] = {}
    problems = []
    for tpl in templates:
        for configure, name in loaded_files(tpl):
            path = find_file(name, dirs)
            if path is not None:
                found[name] = path
                continue
            line = _line_naming(tpl.text, name)
            problems.append(
                Problem(
                    tpl.display,
                    f"configure '{configure}' loads '{name}' (ec3_file), which is in none of the folders EC3 would "
                    f"look in ({_shown(dirs)}); ec3 launch would stop with 'File not found'",
                    line,
                    name,
                )
            )
    return found, problems


def deploys_front(templates: list[RadlTemplate]) -> bool:
    return any(_DEPLOY_FRONT.search(tpl.text) for tpl in templates)


def missing_features(templates: list[RadlTemplate], provided: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(system, feature, template) a recipe reads that no template defines and nobody provides."""
    defined: set[tuple[str, str]] = set()
    for tpl in templates:
        _, parsed = ec3_parse_problems(tpl)
        if parsed is not None:
            defined |= defined_features(parsed)
    for system, features in provided.items():
        defined |= {(system, feature) for feature in features}
    missing = []
    for tpl in templates:
        for system, feature in sorted(tpl.read_features()):
            if (system, feature) not in defined and (system, feature, tpl.name) not in missing:
                missing.append((system, feature, tpl.name))
    return missing


def _radl_value(value) -> str:
    if isinstance(value, bool):
        return f"'{'yes' if value else 'no'}'"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "\\'") + "'"


def private_template(features: dict[str, dict]) -> str:
    """What a user keeps in a private template: system features, secrets among them."""
    blocks = []
    for system, values in features.items():
        lines = " and\n".join(f"    {name} = {_radl_value(value)}" for name, value in values.items())
        blocks.append(f"system {system} (\n{lines}\n)\n")
    return "\n".join(blocks)


@dataclass
class Composition:
    names: list[str]
    features: dict[str, dict]
    radl: str = ""
    problems: list[Problem] = field(default_factory=list)


FRAME, PRIVATE = "primage_check_frame", "primage_check_private"


def ec3_launch_folder(
    work_dir: Path,
    names: list[str],
    features: dict[str, dict],
    templates: list[Path],
    files: dict[str, Path] | None = None,
    frame: str | None = None,
) -> list[str]:
    """Lay out `work_dir` as ec3 reads it and return the `ec3 launch --dry-run` command to run there.

    `templates` and `files` (what recipes load with ec3_file) go into ./templates, where
    ec3 looks first. `frame`, a RADL text, is composed before `names`; `features` (what a
    user's private template sets) after them."""
    ec3 = shutil.which("ec3", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if not ec3:
        raise PrimageError("the ec3 command (ec3-cli) is not installed in this environment")
    folder = work_dir / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    for path in templates:
        shutil.copy(path, folder / path.name)
    for name, path in (files or {}).items():
        shutil.copy(path, folder / name)
    launch = [*names, PRIVATE]
    if frame:
        (folder / f"{FRAME}.radl").write_text(frame, encoding="utf-8")
        launch.insert(0, FRAME)
    _write_private(folder / f"{PRIVATE}.radl", private_template(features))
    auth = _write_private(
        work_dir / "auth.dat",
        "id = im; type = InfrastructureManager; username = check; password = check\nid = dummy; type = Dummy\n",
    )
    command = [ec3, "launch", "primage-check", *launch, "-a", str(auth), "-u", "http://127.0.0.1:9"]
    return [*command, "--dry-run", "-p", "-n", "-y"]


def ec3_environment() -> dict[str, str]:
    """A HOME of the harness for ec3: it keeps its parser tables there (fast next time) and
    reads nothing of the user's ~/.ec3 (the templates it needs are in ./templates)."""
    home = paths.state_dir() / "ec3-home"
    (home / ".ec3").mkdir(parents=True, exist_ok=True)
    return dict(os.environ, HOME=str(home))


def compose(
    names: list[str],
    features: dict[str, dict],
    display: str,
    timeout: float = 60,
    extra_templates: list[Path] | None = None,
    *,
    templates: list[Path] | None = None,
    files: dict[str, Path] | None = None,
    frame: str | None = None,
) -> Composition:
    """Run the real `ec3 launch --dry-run` in a private folder and return the composed RADL.

    `templates` defaults to this repository's, and `extra_templates` (e.g. a file being
    checked); see ec3_launch_folder for the rest."""
    result = Composition(names, features)
    if templates is None:
        templates = [path for folder in template_dirs() for path in folder.glob("*.radl")] + (extra_templates or [])
    with tempfile.TemporaryDirectory(prefix="primage-ec3-") as work:
        command = ec3_launch_folder(Path(work), names, features, templates, files, frame)
        completed = subprocess.run(
            command, cwd=work, env=ec3_environment(), capture_output=True, text=True, timeout=timeout, check=False
        )
    output = completed.stdout + completed.stderr
    # ec3 exits 0 even when a template is missing: read what it says, not only its status.
    errors = [line for line in output.splitlines() if line.startswith("Error") or "Traceback" in line]
    if completed.returncode != 0 or errors:
        message = errors[0] if errors else (output.strip().splitlines()[-1:] or ["no output"])[0]
        by_name = {path.stem: path for path in templates}
        result.problems.append(_ec3_problem(message, names, by_name, display))
        return result
    result.radl = completed.stdout
    return result


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


_EC3_PROCESSING = re.compile(r"^Error processing '([\w.-]+)\.radl': (?:Line (\d+): )?(.*)$")
_EC3_GENERATING = re.compile(r"^Error generating RADL: (?:Line (\d+): )?(.*?)(?: Check the templates used\..*)?$")


def _ec3_problem(message: str, names: list[str], templates: dict[str, Path], display: str) -> Problem:
    """What ec3 said, at the template and line it is about when it says so."""
    file, line, text = display, None, message
    processing, generating = _EC3_PROCESSING.match(message), _EC3_GENERATING.match(message)
    if processing and processing.group(1) in templates:
        path = templates[processing.group(1)]
        file, line, text = paths.relative(path), _int(processing.group(2)), processing.group(3)
        text, line = _explain(text, path, line)
    elif generating:
        line, text = _int(generating.group(1)), generating.group(2)
        deploy = re.search(r"Invalid system id in the deploy", text)
        located = _deploy_at(templates, names, line) if deploy and line else None
        if located:
            path, statement = located
            file = paths.relative(path)
            text = f"'{statement}' deploys a system that no template composed with it defines"
    source = templates.get(Path(file).stem)
    field = block_at(source.read_text(encoding="utf-8"), line) if source and line else None
    return Problem(file, f"ec3 could not compose {' '.join(names)}: {text[:400]}", line, field)


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _explain(text: str, path: Path, line: int | None) -> tuple[str, int | None]:
    """EC3's words for what is wrong with one template, said the way its author fixes it, and where."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if "Invalid system id in the deploy" in text and line:
        return f"'{lines[line - 1].strip()}' deploys a system that no template composed with it defines", line
    if "Invalid indices values in properties 'disk'" in text:
        disks = [number for number, content in enumerate(lines, start=1) if re.search(r"\bdisk\.[1-9]\d*\.", content)]
        explained = (
            "its disks start above disk.0 or leave a gap; EC3 checks each system as it merges the templates in "
            "order, so disk.0 (the image) must come from this template or one composed before it"
        )
        return explained, line or (disks[0] if disks else None)
    return text, line


def _deploy_at(templates: dict[str, Path], names: list[str], line: int) -> tuple[Path, str] | None:
    """The template of the composition with a `deploy` statement on `line`."""
    for path in templates.values():
        if path.stem not in names and path.stem not in (FRAME, PRIVATE):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) >= line and lines[line - 1].strip().startswith("deploy"):
            return path, lines[line - 1].strip()
    return None


def composed_problems(composition: Composition, display: str, placeholders: bool = True) -> list[Problem]:
    """The composed RADL as IM will read it: parsed and checked by IM's radl package; and,
    with `placeholders`, no image URL left a placeholder (a composition users deploy)."""
    from radl.radl_parse import parse_radl

    problems = []
    try:
        parse_radl(composition.radl).check()
    except Exception as exc:
        problems.append(Problem(display, f"IM's RADL parser rejects the composed RADL: {exc}"))
    for line in composition.radl.splitlines() if placeholders else []:
        if "disk.0.image.url" in line and _PLACEHOLDER.search(line):
            problems.append(
                Problem(
                    display,
                    f"the composed RADL still has a placeholder image URL "
                    f"({line.strip()}); set disk.0.image.url for front and wn",
                )
            )
            break
    return problems


def throwaway_secrets(missing: list[tuple[str, str, str]]) -> dict[str, dict]:
    """Values for secret features a check needs; real secrets never live in the repository."""
    filled: dict[str, dict] = {}
    for system, feature, _ in missing:
        if SECRET_FEATURE.search(feature):
            filled.setdefault(system, {})[feature] = THROWAWAY + secrets.token_hex(8)
    return filled
