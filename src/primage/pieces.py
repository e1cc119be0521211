"""Every piece of the repository, discovered from the files: a new file is a new piece at once.

The folder layout is the registry. Adding `tosca/foo.yaml`, `tosca/ci/foo-small.yaml`,
`radl/foo.radl`, `ansible/roles/foo/` or `containers/foo/Dockerfile` makes `primage list`
show it and `primage check` / the tests check it, with no list to update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, roles, tosca
from .errors import PrimageError, UsageError
from .images import spec as image_spec

KINDS = {
    "tosca-template": "TOSCA topology (tosca/*.yaml)",
    "tosca-case": "input set of a TOSCA topology (tosca/ci/<template>-<case>.yaml)",
    "tosca-types": "TOSCA custom types (tosca/types/*.yaml)",
    "radl-template": "EC3 RADL template (radl/*.radl)",
    "radl-composition": "EC3 composition of RADL templates (radl/ci/*.yaml)",
    "role": "Ansible role of the primage.platform collection (ansible/roles/*)",
    "playbook": "playbook the templates call (ansible/playbooks/*.yml)",
    "image": "container image (containers/<dir>/image.yml and its Dockerfile)",
    "manifest": "Kubernetes manifest (containers/<name>/k8s/*.yaml)",
    "base-image": "bootstrapped base image (containers/base/images.yml)",
    "workload-case": "value set of an application's Kubernetes manifests (ansible/roles/<role>/ci/<case>.yml)",
}


@dataclass
class Piece:
    name: str
    kind: str
    path: Path
    detail: str = ""
    related: list[Path] = field(default_factory=list)  # e.g. the template of an input case
    own: bool = True  # one of the repository's pieces (held to its house rules), not any other file

    @property
    def display_path(self) -> str:
        return paths.relative(self.path)

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "path": self.display_path, "detail": self.detail, "own": self.own}


_RADL_KIND = re.compile(r"kind\s*=\s*'([^']+)'")


def _radl_kind(path: Path) -> str:
    match = _RADL_KIND.search(path.read_text(encoding="utf-8", errors="replace"))
    return match.group(1) if match else "?"


def discover() -> list[Piece]:
    found: list[Piece] = []
    tosca_dir = paths.tosca_dir()
    for path in sorted(tosca_dir.glob("*.yaml")):
        found.append(Piece(path.stem, "tosca-template", path, _tosca_detail(path)))
    for case in tosca.input_cases():
        found.append(Piece(case.name, "tosca-case", case.path, f"inputs for {case.template.name}", [case.template]))
    for path in sorted((tosca_dir / "types").glob("*.yaml")):
        found.append(Piece(path.stem, "tosca-types", path))
    radl_dir = paths.radl_dir()
    for path in sorted(radl_dir.rglob("*.radl")):
        found.append(Piece(path.stem, "radl-template", path, f"kind {_radl_kind(path)}"))
    for path in sorted((radl_dir / "ci").glob("*.yaml")):
        found.append(Piece(path.stem, "radl-composition", path))
    for role in roles.discover():
        scenarios = ", ".join(s.name for s in role.scenarios()) or "no molecule scenario"
        found.append(Piece(role.name, "role", role.path, f"molecule: {scenarios}"))
    for path in sorted((paths.ansible_dir() / "playbooks").glob("*.yml")):
        found.append(Piece(path.stem, "playbook", path))
    from . import workloads

    for name in workloads.applications():
        for path in sorted(roles.find(name).path.glob("ci/*.yml")):
            found.append(Piece(f"{name}-{path.stem}", "workload-case", path, f"values of {name}"))
    containers = paths.containers_dir()
    for folder in image_spec.image_folders(containers):
        found.append(image_piece(folder))
    for manifest in sorted(containers.glob("*/k8s/*.yaml")):
        found.append(Piece(f"{manifest.parent.parent.name}/{manifest.stem}", "manifest", manifest))
    from . import engine

    for image in engine.base_images():
        found.append(
            Piece(
                image.tag,
                "base-image",
                engine.base_images_file(),
                f"{image.suite} from {image.mirror}" + ("" if image.default else " (opt-in)"),
            )
        )
    _refuse_duplicate_names(found)
    return found


def image_piece(folder: Path) -> Piece:
    spec_file = folder / image_spec.IMAGE_FILE
    path = spec_file if spec_file.exists() else folder / image_spec.DOCKERFILE
    image, problems = image_spec.load(folder)
    if image is None:
        detail = f"unreadable: {problems[0].message}" if problems else "unreadable"
    else:
        detail = f"{image.name} {image.version}" + (f", requires {', '.join(image.requires)}" if image.requires else "")
        if image.variants:
            detail += f", variants {', '.join(image.variants)}"
        if image.is_layer:
            detail += f", variant layer (tags <application tag>-{image.layer.suffix})"
    return Piece(folder.name, "image", path, detail)


def _tosca_detail(path: Path) -> str:
    try:
        tpl = tosca.load(path)
    except PrimageError as exc:
        return f"unreadable: {exc.problem.message}"
    return f"{len(tpl.node_templates)} nodes, {len(tpl.inputs)} inputs, {len(tpl.outputs)} outputs"


def _refuse_duplicate_names(found: list[Piece]) -> None:
    seen: dict[tuple[str, str], Piece] = {}
    for piece in found:
        key = (piece.kind, piece.name)
        if key in seen:
            raise PrimageError(
                f"two {piece.kind} pieces are named '{piece.name}': {seen[key].display_path} and "
                f"{piece.display_path}; rename one",
                file=piece.display_path,
            )
        seen[key] = piece


def from_file(path: Path, everything: list[Piece] | None = None) -> Piece:
    """A piece for any file given on the command line, in the tree or not."""
    resolved = path.resolve()
    for piece in discover() if everything is None else everything:
        if piece.path.resolve() == resolved and piece.kind != "base-image":
            return piece
    if not path.exists():
        raise UsageError(f"{path}: no such file or piece (see 'primage list')")
    if path.is_dir() and (path / "tasks" / "main.yml").exists():
        return Piece(path.name, "role", resolved, own=False)
    if path.suffix == ".radl":
        return Piece(path.stem, "radl-template", resolved, f"kind {_radl_kind(path)}", own=False)
    if path.suffix in (".yaml", ".yml") and tosca.is_topology(path):
        return Piece(path.stem, "tosca-template", resolved, own=False)
    if path.suffix in (".yaml", ".yml") and "tosca_definitions_version" in path.read_text(errors="replace")[:4096]:
        return Piece(path.stem, "tosca-types", resolved, own=False)  # types without a topology
    if path.suffix in (".yaml", ".yml") and re.search(r"^templates:", path.read_text(errors="replace"), re.M):
        return Piece(path.stem, "radl-composition", resolved, own=False)
    if path.name in (image_spec.DOCKERFILE, image_spec.IMAGE_FILE):
        piece = image_piece(resolved.parent)
        piece.own = False
        return piece
    from . import workloads

    if workloads.is_case_file(path):
        return Piece(path.stem, "workload-case", resolved, own=False)
    raise UsageError(
        f"{path}: cannot tell what kind of piece this is (expected a TOSCA topology or types .yaml, a "
        ".radl template, a role folder, an image.yml or a Dockerfile, or a workload case with 'values:')"
    )


def select(selectors: list[str], everything: list[Piece] | None = None) -> list[Piece]:
    """Pieces matching names, kinds or file paths; all pieces when no selector is given.
    `everything`: the discovered pieces, when the caller has them already."""
    everything = discover() if everything is None else everything
    if not selectors:
        return everything
    chosen: list[Piece] = []
    for selector in selectors:
        if selector in KINDS:
            matches = [p for p in everything if p.kind == selector]
        else:
            matches = [p for p in everything if p.name == selector]
            if not matches and (Path(selector).exists() or "/" in selector or "." in Path(selector).name):
                matches = [from_file(Path(selector), everything)]
        if not matches:
            names = sorted({p.name for p in everything})
            raise UsageError(
                f"'{selector}' is no piece, kind or file; pieces: {', '.join(names)}; kinds: {', '.join(KINDS)}"
            )
        chosen.extend(p for p in matches if p not in chosen)
    return chosen
