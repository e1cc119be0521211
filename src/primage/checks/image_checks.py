"""Checks of container images (containers/<name>/Dockerfile) and Kubernetes manifests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .. import paths
from ..errors import Problem
from ..images import spec
from ..pieces import Piece
from . import Context, Result, from_problems, not_run
from .yaml_lint import check_files


def image_spec(piece: Piece, context: Context) -> Result:
    """image.yml against its schema, the Dockerfile's FROM lines (pinned, project images through
    ${<DIR>_IMAGE} and listed in requires) and the requirements among the image's neighbours."""
    folder = piece.path.parent
    image_set = spec.load_set(folder.parent)
    return from_problems("image.yml", image_set.problems.get(folder.name, []))


def hadolint(piece: Piece, context: Context) -> Result:
    binary = Path(sys.executable).parent / "hadolint"
    if not binary.exists():
        return not_run("hadolint", "hadolint is not installed in this environment (scripts/setup.sh)")
    dockerfile = piece.path.parent / spec.DOCKERFILE
    if not dockerfile.is_file():
        return not_run("hadolint", f"there is no {paths.relative(dockerfile)}")
    completed = subprocess.run(
        [str(binary), "--format", "json", str(dockerfile)], capture_output=True, text=True, check=False
    )
    findings = json.loads(completed.stdout or "[]")
    return from_problems(
        "hadolint",
        [
            Problem(paths.relative(Path(f["file"])), f"{f['message']} [hadolint {f['code']}]", f.get("line"))
            for f in findings
        ],
    )


def kubernetes_validate(piece: Piece, context: Context) -> Result:
    binary = Path(sys.executable).parent / "kubernetes-validate"
    completed = subprocess.run(
        [str(binary), "--strict", "--quiet", str(piece.path)], capture_output=True, text=True, check=False
    )
    if completed.returncode == 0:
        return from_problems("kubernetes-validate", [])
    message = (completed.stdout + completed.stderr).strip().replace("\n", " | ")[:500]
    return from_problems("kubernetes-validate", [Problem(piece.display_path, message)])


IMAGE_CHECKS = [("image.yml", image_spec), ("hadolint", hadolint)]
MANIFEST_CHECKS = [
    ("yamllint", lambda piece, context: check_files(piece.path)),
    ("kubernetes-validate", kubernetes_validate),
]


def base_image_current(piece: Piece, context: Context) -> Result:
    """The bootstrapped image exists and was built from the current recipe."""
    from .. import engine

    if not engine.docker_answers():
        return not_run("bootstrapped", "no Docker engine answers (scripts/setup.sh starts one)")
    image = engine.find_base_image(piece.name)
    labels = engine.image_labels(image.tag)
    if labels is None:
        if not image.default:
            return not_run("bootstrapped", f"{image.tag} is opt-in and not present here")
        return from_problems(
            "bootstrapped",
            [Problem(piece.display_path, f"{image.tag} is not present; run `primage images base {image.tag}`")],
        )
    if labels.get(engine.RECIPE_LABEL) != image.recipe_hash(engine.extra_ca_certificates()):
        return from_problems(
            "bootstrapped",
            [
                Problem(
                    piece.display_path,
                    f"{image.tag} was built from another recipe; run `primage images base --force {image.tag}`",
                )
            ],
        )
    return from_problems("bootstrapped", [])


BASE_IMAGE_CHECKS = [("bootstrapped", base_image_current)]
