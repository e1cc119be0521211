"""EC3 RADL templates: parsing in EC3's dialect, their Ansible recipes, the features they read,
and composition with the real `ec3` command (offline, `--dry-run`).

EC3 templates are written in EC3's RADL dialect (e.g. `ec3_templates contains 'x'`) and
parsed by EC3's own parser; what EC3 composes is sent to IM, so the composed RADL is
checked with IM's `radl` package.
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

_CONFIGURE = re.compile(r"^configure\s+([\w.-]+)\s*\(\s*\n@begin\n(.*?)\n@end", re.S | re.M)
_XPATH = re.compile(r"ec3_xpath:\s*/system/([\w.-]+)/([\w.-]+)")
_ROLE = re.compile(r"role:\s*['\"]?([\w]+)\.([\w]+)\.([\w]+)")
_INCLUDE = re.compile(r"^include\s+[\w.-]+\s*\(\s*template\s*=\s*'([^']*)'", re.M)
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
    recipes = [Recipe(m.group(1), m.group(2), text[: m.start(2)].count("\n") + 1) for m in _CONFIGURE.finditer(text)]
    return RadlTemplate(path.resolve(), text, kind.group(1) if kind else "?", recipes)


_EC3_ONLY_BLOCK = re.compile(r"^(description|include)\s+[\w.-]+\s*\((?:[^()']|'(?:[^'\\]|\\.)*')*\)", re.M | re.S)


@contextlib.contextmanager
def _ec3_home():
    """EC3's parser writes its tables to ~/.ec3; keep them in the harness cache."""
    home = paths.cache_dir() / "ec3-home"
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
    """Parse and check with EC3's own RADL parser; return (problems, parsed RADL or None).

    `description` and `include` blocks are EC3's own additions, which the ec3 command
    handles before its parser sees the rest; they are blanked (keeping line numbers)."""
    from IM2.radl.radl_parse import parse_radl as ec3_parse_radl

    try:
        with _ec3_home():
            parsed = ec3_parse_radl(_EC3_ONLY_BLOCK.sub(_blank, tpl.text))
        parsed.check()
    except Exception as exc:  # RADLParseException carries the line
        line = getattr(exc, "line", None)
        message = re.sub(r"^Line \d+: ", "", str(exc)).strip().splitlines()[0]
        token = re.search(r"LexToken\((\w+),'([^']*)'", message)
        if token:
            message = f"unexpected {token.group(2)!r}: a feature without 'and' before it, or an unbalanced parenthesis?"
        elif message.startswith("Invalid system id in the deploy") and line:
            statement = tpl.text.splitlines()[line - 1].strip()
            message = f"'{statement}' deploys a system that no 'system' block of the template defines"
        elif message == "Parse error in: None":
            message = "unexpected end of file: an unclosed parenthesis or @begin without @end?"
        return [Problem(tpl.display, f"EC3 cannot parse the template: {message}", line)], None
    return [], parsed


def defined_features(parsed) -> set[tuple[str, str]]:
    from IM2.radl.radl import system

    return {(item.getId(), name) for item in parsed.gets(system) for name in item.props}


def recipe_problems(tpl: RadlTemplate) -> list[Problem]:
    """Each recipe is a YAML list of plays, calls existing roles, and pins the collection."""
    problems: list[Problem] = []
    roles_dir = paths.ansible_dir() / "roles"
    from . import ansible_env

    namespace, name = ansible_env.collection_name()
    for recipe in tpl.recipes:
        try:
            plays = yaml.safe_load(recipe.text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = recipe.first_line + mark.line if mark else recipe.first_line
            problems.append(
                Problem(
                    tpl.display,
                    f"recipe of configure '{recipe.configure}' is not valid YAML: {getattr(exc, 'problem', exc)}",
                    line,
                )
            )
            continue
        if not isinstance(plays, list) or not all(isinstance(p, dict) for p in plays):
            problems.append(
                Problem(
                    tpl.display,
                    f"recipe of configure '{recipe.configure}' must be a list of plays (mappings)",
                    recipe.first_line,
                )
            )
            continue
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
    problems.extend(pin_problems(tpl.display, tpl.text))
    return problems


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
                        f"tag {pin.tag} (ansible/galaxy.yml version)",
                        offset,
                    )
                )
    return problems


# --------------------------------------------------------------------------- composition


def template_dirs() -> list[Path]:
    return [paths.radl_dir(), *sorted(p for p in paths.radl_dir().iterdir() if p.is_dir() and p.name != "ci")]


def find_template(name: str, extra: list[Path] | None = None) -> Path | None:
    for folder in (extra or []) + template_dirs():
        candidate = folder / f"{name}.radl"
        if candidate.is_file():
            return candidate
    return None


def expand(names: list[str], extra_dirs: list[Path] | None = None) -> list[RadlTemplate]:
    """The templates EC3 will merge: the named ones and what they include, each once."""
    seen: list[str] = []
    loaded: list[RadlTemplate] = []
    queue = list(names)
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.append(name)
        path = find_template(name, extra_dirs)
        if path is None:
            raise PrimageError(
                f"no RADL template named '{name}' (looked in "
                f"{', '.join(paths.relative(d) for d in (extra_dirs or []) + template_dirs())})"
            )
        tpl = load(path)
        loaded.append(tpl)
        queue.extend(tpl.includes())
    return loaded


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


def compose(
    names: list[str],
    features: dict[str, dict],
    display: str,
    timeout: float = 60,
    extra_templates: list[Path] | None = None,
) -> Composition:
    """Run the real `ec3 launch --dry-run` in a private folder and return the composed RADL.

    The repository's templates (and `extra_templates`, e.g. a file being checked) are
    copied into the folder's ./templates, where ec3 looks first."""
    result = Composition(names, features)
    ec3 = shutil.which("ec3", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if not ec3:
        raise PrimageError("the ec3 command (ec3-cli) is not installed in this environment")
    with tempfile.TemporaryDirectory(prefix="primage-ec3-") as work:
        work_dir = Path(work)
        templates = work_dir / "templates"
        templates.mkdir()
        for folder in template_dirs():
            for radl_file in folder.glob("*.radl"):
                shutil.copy(radl_file, templates / radl_file.name)
        for radl_file in extra_templates or []:
            shutil.copy(radl_file, templates / radl_file.name)
        private = templates / "primage_check_private.radl"
        fd = os.open(private, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(private_template(features))
        auth = work_dir / "auth.dat"
        fd = os.open(auth, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "id = im; type = InfrastructureManager; username = check; password = check\nid = dummy; type = Dummy\n"
            )
        command = [
            ec3,
            "launch",
            "primage-check",
            *names,
            "primage_check_private",
            "-a",
            str(auth),
            "-u",
            "http://127.0.0.1:9",
            "--dry-run",
            "-p",
            "-n",
            "-y",
        ]
        env = dict(os.environ, HOME=str(work_dir))
        completed = subprocess.run(
            command, cwd=work_dir, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    output = completed.stdout + completed.stderr
    # ec3 exits 0 even when a template is missing: read what it says, not only its status.
    errors = [line for line in output.splitlines() if line.startswith("Error") or "Traceback" in line]
    if completed.returncode != 0 or errors:
        message = errors[0] if errors else output.strip().splitlines()[-1:] or ["no output"]
        message = message if isinstance(message, str) else message[0]
        result.problems.append(Problem(display, f"ec3 could not compose {' '.join(names)}: {message[:400]}"))
        return result
    result.radl = completed.stdout
    return result


def composed_problems(composition: Composition, display: str) -> list[Problem]:
    """The composed RADL as IM will read it: parsed and checked by IM's radl package."""
    from radl.radl_parse import parse_radl

    problems = []
    try:
        parse_radl(composition.radl).check()
    except Exception as exc:
        problems.append(Problem(display, f"IM's RADL parser rejects the composed RADL: {exc}"))
    for line in composition.radl.splitlines():
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
