"""Checks of TOSCA topologies and their input cases: the harness's own input and semantic
checks, tosca-parser's validation, IM's translation to RADL and radl's check of the result."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import secrets
from pathlib import Path

import yaml

from .. import paths, tosca, tosca_semantics, tosca_types, yamlio
from ..errors import Problem
from ..pieces import Piece
from ..tosca_locate import locate
from . import FAIL, NOT_APPLICABLE, Context, Result, failed, from_problems, not_run, passed
from .yaml_lint import check_files

THROWAWAY_PREFIX = "primage-check-placeholder-"


def _template_of(piece: Piece) -> tosca.Template:
    return tosca.load(piece.related[0] if piece.kind == "tosca-case" else piece.path)


def yamllint(piece: Piece, context: Context) -> Result:
    files = [piece.path] + ([piece.related[0]] if piece.kind == "tosca-case" else [])
    return check_files(*files, own=piece.own)


def inputs(piece: Piece, context: Context) -> Result:
    tpl = _template_of(piece)  # a PrimageError here fails this check; later ones then do not run
    # The types before the values: an input file refused below still leaves them to the later checks.
    types = tosca.template_types(tpl, context.get("url_map"))
    context["types"] = types
    context["template"] = tpl
    input_files = list(context.get("input_files") or [])
    if piece.kind == "tosca-case":
        input_files.insert(0, piece.path)
    values = tosca.input_values(input_files, context.get("set_options") or [])
    # Secrets never live in the repository's input cases: checks use a throwaway value.
    for name, definition in tpl.inputs.items():
        if tosca.is_secret(name) and name not in values and tosca.input_required(definition or {}):
            values[name] = tosca.InputValue(THROWAWAY_PREFIX + secrets.token_hex(8), "generated", None, None)
    # A bare template is checked as written: its required inputs get values from its cases.
    require_all = piece.kind == "tosca-case" or bool(input_files or context.get("set_options"))
    problems = tosca.input_problems(tpl, values, require_all, types)
    context["values"] = values
    context["inputs_ok"] = not problems
    return from_problems("inputs", problems)


def semantics(piece: Piece, context: Context) -> Result:
    if "template" not in context:
        return not_run("semantics", "the template cannot be read (see inputs)")
    tpl = context["template"]
    problems = tosca_semantics.semantic_problems(tpl, context["types"], context.get("url_map"))
    problems += tosca_semantics.release_pin_problems(tpl)
    result = from_problems("semantics", problems)
    context["semantics_ok"] = result.status != FAIL
    return result


@contextlib.contextmanager
def _quiet(*logger_names: str):
    previous = {}
    for name in logger_names:
        logger = logging.getLogger(name)
        previous[name] = (logger.level, logger.propagate)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
    try:
        yield
    finally:
        for name, (level, propagate) in previous.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).propagate = propagate


def unreachable_reason(types: tosca_types.TypeCatalog) -> str:
    urls = ", ".join(document.unreachable or "" for document in types.unreachable)
    return (
        f"the template imports {urls}, which this machine cannot fetch; give a local copy "
        "with --map-url URL=FILE (or URL/=FOLDER/)"
    )


def tosca_parser(piece: Piece, context: Context) -> Result:
    if "template" not in context:
        return not_run("tosca-parser", "the template cannot be read (see inputs)")
    if not context.get("inputs_ok"):
        return not_run("tosca-parser", "the input values are invalid (see inputs)")
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.tosca_template import ToscaTemplate

    tpl = context["template"]
    if context["types"].unreachable:
        context["parser_not_run"] = True
        return not_run("tosca-parser", unreachable_reason(context["types"]))
    rendered = tosca.render(tpl, context["values"], "local", validate=False, url_map=context.get("url_map"))
    context["rendered"] = rendered
    with _quiet("tosca"):
        try:
            # tosca-parser rewrites the dict it is given; hand it a copy.
            ToscaTemplate(yaml_dict_tpl=copy.deepcopy(rendered), a_file=False)
        except Exception as exc:
            reports = ExceptionCollector.getExceptionsReport(full=False) or []
            messages = [report.split(": ", 1)[-1].strip().strip("'") for report in reports]
            if not messages:
                # tosca-parser itself broke on the template (e.g. a get_input where it compares
                # numbers); IM runs tosca-parser, so it refuses the template the same way.
                crash = f"tosca-parser fails on the template ({type(exc).__name__}: {exc}), so IM refuses it too"
                return failed("tosca-parser", [Problem(tpl.display, crash)])
            return failed("tosca-parser", [locate(tpl, m) for m in messages])
        finally:
            ExceptionCollector.stop()
            ExceptionCollector.clear()
    context["parsed_ok"] = True
    return passed("tosca-parser")


@contextlib.contextmanager
def _in_folder(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def im_translate(piece: Piece, context: Context) -> Result:
    if context.get("parser_not_run"):
        return not_run("im-translate", "IM would read the same imports (see tosca-parser)")
    if not context.get("parsed_ok"):
        return not_run("im-translate", "tosca-parser did not accept the template")
    if not context.get("semantics_ok"):
        return not_run("im-translate", "the semantic checks failed; IM would only answer cryptically")
    tpl = context["template"]
    missing = [name for name in tosca.missing_required(tpl, context["values"]) if not tosca.is_secret(name)]
    if missing:
        if piece.kind == "tosca-template" and context.get("has_cases"):
            context["im_not_applicable"] = True
            return Result(
                "im-translate",
                NOT_APPLICABLE,
                reason=f"needs values for {', '.join(missing)}: its input cases run it",
            )
        return not_run("im-translate", f"required inputs without a value: {', '.join(missing)} (give -i FILE)")
    from IM.tosca.Tosca import Tosca

    text = yamlio.dump(context["rendered"])
    # IM keeps an HTTP cache file in the working folder; keep it out of the user's.
    with _quiet("InfrastructureManager", "tosca"), _in_folder(paths.state_dir() / "im-translate"):
        try:
            _, radl = Tosca(text).to_radl()
        except Exception as exc:  # IM raises bare Exception with its message
            unreachable = _unreachable_download(Tosca, str(exc))
            if unreachable:
                return not_run(
                    "im-translate",
                    f"IM downloads {unreachable} to translate the template, and this machine cannot "
                    "reach it; give a local copy with --map-url URL=FILE",
                )
            message = str(exc).replace("Error parsing TOSCA template: ", "").strip().splitlines()[0]
            return failed("im-translate", [locate(tpl, f"IM cannot translate the template: {message}")])
    context["radl"] = str(radl)
    return passed("im-translate")


def _unreachable_download(tosca_class, message: str) -> str | None:
    """The URL IM failed to download while translating, when it does not answer from here
    (not the template's fault), else None."""
    downloaded = re.search(r"Error downloading the implementation script '([^']+)'", message)
    remote_artifact = re.search(r"Implementation file: '([^']+)' is not located in the artifacts folder", message)
    if downloaded:
        url = downloaded.group(1)
    elif remote_artifact:
        url = tosca_class.ARTIFACTS_REMOTE_REPO + remote_artifact.group(1)
    else:
        return None
    _, _, unreachable = tosca_types.fetch(url)
    return f"{url} ({unreachable})" if unreachable else None


def radl_check(piece: Piece, context: Context) -> Result:
    if context.get("im_not_applicable"):
        return Result("radl-check", NOT_APPLICABLE, reason="checked on the template's input cases")
    if "radl" not in context:
        return not_run("radl-check", "IM produced no RADL")
    from radl.radl_parse import parse_radl

    tpl = context["template"]
    try:
        parse_radl(context["radl"]).check()
    except Exception as exc:  # radl raises RADLParseException with line information
        return failed("radl-check", [_radl_problem(tpl, context["radl"], exc)])
    return passed("radl-check")


def _radl_problem(tpl: tosca.Template, radl_text: str, exc: Exception) -> Problem:
    """IM's RADL check of its own translation, told as the feature and the node it comes from."""
    line = getattr(exc, "line", None)
    message = re.sub(r"^Line \d+: ", "", str(exc))
    lines = radl_text.splitlines()
    if not line or line > len(lines):
        return Problem(tpl.display, f"the RADL IM makes of it is invalid: {message}; IM would refuse to create it")
    feature = lines[line - 1].strip().removesuffix(" and")
    systems = [re.match(r"system ([\w.-]+)", text) for text in lines[:line]]
    system = next((match.group(1) for match in reversed(systems) if match), None)
    where = f"{feature} of system '{system}'" if system else feature
    text = f"the RADL IM makes of it is invalid at {where} (RADL line {line}): {message}; IM would refuse to create it"
    if system in tpl.node_templates:
        return Problem(tpl.display, f"node '{system}': {text}", tpl.node_line(system), system)
    return Problem(tpl.display, text)


TEMPLATE_CHECKS = [
    ("yamllint", yamllint),
    ("inputs", inputs),
    ("semantics", semantics),
    ("tosca-parser", tosca_parser),
    ("im-translate", im_translate),
    ("radl-check", radl_check),
]


def types_check(piece: Piece, context: Context) -> Result:
    """A types file parses on its own with tosca-parser (as every template imports it)."""
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.tosca_template import ToscaTemplate

    data, _ = yamlio.load_file(piece.path)
    document = {
        "tosca_definitions_version": data.get("tosca_definitions_version"),
        "imports": [str(piece.path)],
        "topology_template": {"node_templates": {}},
    }
    with _quiet("tosca"):
        try:
            ToscaTemplate(yaml_dict_tpl=yaml.safe_load(yaml.safe_dump(document)), a_file=False)
        except Exception:
            reports = ExceptionCollector.getExceptionsReport(full=False) or ["tosca-parser rejected the file"]
            return failed("tosca-parser", [Problem(piece.display_path, r.split(": ", 1)[-1]) for r in reports])
        finally:
            ExceptionCollector.stop()
            ExceptionCollector.clear()
    return passed("tosca-parser")


TYPES_CHECKS = [
    ("yamllint", lambda piece, context: check_files(piece.path, own=piece.own)),
    ("tosca-parser", types_check),
]
