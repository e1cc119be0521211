"""Checks of EC3 RADL templates and of their compositions (radl/ci/*.yaml)."""

from __future__ import annotations

from .. import radl, yamlio
from ..errors import Problem
from ..pieces import Piece
from . import Context, Result, from_problems, not_run, passed
from .yaml_lint import check_files

DEFAULT_MAIN = "kubernetes"
DEFAULT_IMAGES = "debian13"
CHECK_IMAGE = {
    "front": {"disk.0.image.url": "ost://cloud.example.org/primage-check-image"},
    "wn": {"disk.0.image.url": "ost://cloud.example.org/primage-check-image"},
}


def _merge(*feature_sets: dict[str, dict]) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for features in feature_sets:
        for system, values in (features or {}).items():
            merged.setdefault(system, {}).update(values or {})
    return merged


def ec3_parse(piece: Piece, context: Context) -> Result:
    tpl = radl.load(piece.path)
    context["template"] = tpl
    problems, _ = radl.ec3_parse_problems(tpl)
    context["parsed_ok"] = not problems
    return from_problems("ec3-parse", problems)


def recipes(piece: Piece, context: Context) -> Result:
    return from_problems("recipes", radl.recipe_problems(context["template"]))


def _single_composition(tpl: radl.RadlTemplate) -> list[str]:
    if tpl.kind == "main":
        return [tpl.name, DEFAULT_IMAGES]
    if tpl.kind == "images":
        return [DEFAULT_MAIN, tpl.name]
    return [DEFAULT_MAIN, tpl.name, DEFAULT_IMAGES]


def ec3_compose_template(piece: Piece, context: Context) -> Result:
    if not context.get("parsed_ok"):
        return not_run("ec3-compose", "EC3 cannot parse the template")
    tpl = context["template"]
    composition = _compose_in_repository(piece, tpl) if piece.own else _compose_in_context(piece, tpl)
    context["composition"] = composition
    return from_problems("ec3-compose", composition.problems)


def _placeholders(missing: list[tuple[str, str, str]]) -> dict[str, dict]:
    """A template alone cannot know the values its users give: what it reads gets a placeholder."""
    return _merge(
        radl.throwaway_secrets(missing),
        {
            system: {feature: "primage-check-placeholder"}
            for system, feature, _ in missing
            if not radl.SECRET_FEATURE.search(feature)
        },
    )


def _compose_in_repository(piece: Piece, tpl: radl.RadlTemplate) -> radl.Composition:
    """One of the repository's templates, with the repository's main and images templates."""
    names = _single_composition(tpl)
    extra = [piece.path.parent] if radl.find_template(tpl.name) != piece.path else []
    templates = radl.expand(names, extra)
    missing = radl.missing_features(templates, CHECK_IMAGE)
    return radl.compose(
        names,
        _merge(CHECK_IMAGE, _placeholders(missing)),
        piece.display_path,
        extra_templates=[piece.path] if extra else None,
    )


def _compose_in_context(piece: Piece, tpl: radl.RadlTemplate) -> radl.Composition:
    """Any other template, as EC3 composes it: what it includes and loads found where EC3
    would find it (radl.context_dirs), after a frame holding what a user's main and images
    templates give (front and wn with an image; `deploy front 1` unless a main deploys it)."""
    dirs = radl.context_dirs(piece.path)
    templates = radl.expand([tpl.name], dirs=dirs)
    if templates[0].path != tpl.path:  # another file of that name shadows it: check this one
        templates[0] = tpl
    files, problems = radl.loaded_file_paths(templates, dirs)
    if problems:
        return radl.Composition([tpl.name], {}, problems=problems)
    frame = radl.private_template(CHECK_IMAGE)
    if tpl.kind != "main" and not radl.deploys_front(templates):
        frame += "\ndeploy front 1\n"
    missing = radl.missing_features(templates, CHECK_IMAGE)
    return radl.compose(
        [tpl.name],
        _placeholders(missing),
        piece.display_path,
        templates=[t.path for t in templates],
        files=files,
        frame=frame,
    )


def radl_check(piece: Piece, context: Context) -> Result:
    composition = context.get("composition")
    if composition is None or not composition.radl:
        return not_run("radl-check", "ec3 composed nothing")
    # A template alone may leave its image URL to the user's own template; a composition may not.
    placeholders = piece.kind == "radl-composition"
    return from_problems("radl-check", radl.composed_problems(composition, piece.display_path, placeholders))


TEMPLATE_CHECKS = [
    ("ec3-parse", ec3_parse),
    ("recipes", recipes),
    ("ec3-compose", ec3_compose_template),
    ("radl-check", radl_check),
]


def composition_features(piece: Piece, context: Context) -> Result:
    data, lines = yamlio.load_file(piece.path)
    problems: list[Problem] = []
    if not isinstance(data, dict) or not isinstance(data.get("templates"), list) or not data["templates"]:
        return from_problems(
            "features",
            [
                Problem(
                    piece.display_path,
                    "expected 'templates': a list of RADL template names, in the order of `ec3 launch`",
                    1,
                    "templates",
                )
            ],
        )
    features = data.get("features") or {}
    if not isinstance(features, dict) or not all(isinstance(v, dict) for v in features.values()):
        return from_problems(
            "features",
            [
                Problem(
                    piece.display_path,
                    "'features' maps a system name to its features (name: value)",
                    lines.line_of("features"),
                    "features",
                )
            ],
        )
    try:
        templates = radl.expand([str(n) for n in data["templates"]])
    except Exception as exc:  # unknown template name
        return from_problems(
            "features", [Problem(piece.display_path, str(exc), lines.line_of("templates"), "templates")]
        )
    missing = radl.missing_features(templates, features)
    secrets = radl.throwaway_secrets(missing)
    for system, feature, owner in missing:
        if feature not in secrets.get(system, {}):
            problems.append(
                Problem(
                    piece.display_path,
                    f"{owner}.radl reads /system/{system}/{feature}, which no "
                    "template of the composition defines; set it under 'features'",
                    lines.line_of("features"),
                    feature,
                )
            )
    if not problems:
        context["names"] = [str(n) for n in data["templates"]]
        context["features"] = _merge(features, secrets)
    return from_problems("features", problems)


def ec3_compose_case(piece: Piece, context: Context) -> Result:
    if "names" not in context:
        return not_run("ec3-compose", "the composition is incomplete (see features)")
    composition = radl.compose(context["names"], context["features"], piece.display_path)
    context["composition"] = composition
    return from_problems("ec3-compose", composition.problems) if composition.problems else passed("ec3-compose")


COMPOSITION_CHECKS = [
    ("yamllint", lambda piece, context: check_files(piece.path)),
    ("features", composition_features),
    ("ec3-compose", ec3_compose_case),
    ("radl-check", radl_check),
]
