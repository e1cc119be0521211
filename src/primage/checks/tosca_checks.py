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

from .. import paths, tosca, yamlio
from ..errors import Problem
from ..pieces import Piece
from . import NOT_APPLICABLE, Context, Result, failed, from_problems, not_run, passed
from .yaml_lint import check_files

THROWAWAY_PREFIX = "primage-check-placeholder-"


def _template_of(piece: Piece) -> tosca.Template:
    return tosca.load(piece.related[0] if piece.kind == "tosca-case" else piece.path)


def yamllint(piece: Piece, context: Context) -> Result:
    files = [piece.path] + ([piece.related[0]] if piece.kind == "tosca-case" else [])
    return check_files(*files)


def inputs(piece: Piece, context: Context) -> Result:
    tpl = _template_of(piece)  # a PrimageError here fails this check; later ones then do not run
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
    problems = tosca.input_problems(tpl, values, require_all)
    context["values"] = values
    context["inputs_ok"] = not problems
    return from_problems("inputs", problems)


def semantics(piece: Piece, context: Context) -> Result:
    if "template" not in context:
        return not_run("semantics", "the template cannot be read (see inputs)")
    tpl = context["template"]
    problems = tosca.semantic_problems(tpl)
    context["semantics_ok"] = not problems
    return from_problems("semantics", problems)


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


_QUOTED_NODE = re.compile(
    r'template "([^"]+)"|node template "?([\w-]+)"?|"([\w-]+)" of type|'
    r'in template "([^"]+)"'
)
_QUOTED_INPUT = re.compile(r'(?:input|parameter) "?([\w-]+)"?')


def _locate(tpl: tosca.Template, message: str) -> Problem:
    """Point a tosca-parser message at the node or input it talks about."""
    for match in _QUOTED_NODE.finditer(message):
        name = next(group for group in match.groups() if group)
        if name in tpl.node_templates:
            return Problem(tpl.display, message, tpl.node_line(name), name)
    for match in _QUOTED_INPUT.finditer(message):
        if match.group(1) in tpl.inputs:
            return Problem(tpl.display, message, tpl.input_line(match.group(1)), match.group(1))
    for name in tpl.node_templates:
        if f'"{name}"' in message or f"'{name}'" in message:
            return Problem(tpl.display, message, tpl.node_line(name), name)
    # Last resort: the first quoted word of the message that appears in the template.
    lines = tpl.path.read_text(encoding="utf-8").splitlines()
    for word in re.findall(r'"([^"\s]+)"', message):
        for number, text in enumerate(lines, start=1):
            if re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", text) and not text.lstrip().startswith("#"):
                return Problem(tpl.display, message, number)
    return Problem(tpl.display, message)


def tosca_parser(piece: Piece, context: Context) -> Result:
    if "template" not in context:
        return not_run("tosca-parser", "the template cannot be read (see inputs)")
    if not context.get("inputs_ok"):
        return not_run("tosca-parser", "the input values are invalid (see inputs)")
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.tosca_template import ToscaTemplate

    tpl = context["template"]
    rendered = tosca.render(tpl, context["values"], "local", validate=False)
    context["rendered"] = rendered
    with _quiet("tosca"):
        try:
            # tosca-parser rewrites the dict it is given; hand it a copy.
            ToscaTemplate(yaml_dict_tpl=copy.deepcopy(rendered), a_file=False)
        except Exception:
            reports = ExceptionCollector.getExceptionsReport(full=False) or []
            messages = [report.split(": ", 1)[-1].strip().strip("'") for report in reports]
            if not messages:
                raise
            return failed("tosca-parser", [_locate(tpl, m) for m in messages])
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
    with _quiet("InfrastructureManager", "tosca"), _in_folder(paths.cache_dir() / "im-translate"):
        try:
            _, radl = Tosca(text).to_radl()
        except Exception as exc:  # IM raises bare Exception with its message
            message = str(exc).replace("Error parsing TOSCA template: ", "").strip().splitlines()[0]
            return failed("im-translate", [Problem(tpl.display, f"IM cannot translate the template: {message}")])
    context["radl"] = str(radl)
    return passed("im-translate")


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
        line = getattr(exc, "line", None)
        where = f" (RADL line {line})" if line else ""
        return failed("radl-check", [Problem(tpl.display, f"the RADL IM makes of it is invalid{where}: {exc}")])
    return passed("radl-check")


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
    ("yamllint", lambda piece, context: check_files(piece.path)),
    ("tosca-parser", types_check),
]
