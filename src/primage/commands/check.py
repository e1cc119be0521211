"""`primage check [PIECE|KIND|FILE ...]`: validate pieces with the real tools of the field.

Prints a table of piece by check (pass, warn, FAIL, not run, n/a), then every problem as
`file:line (field): message`, errors first, then warnings. Exit 0 when nothing failed, 1
when something did; warnings never fail. A check that cannot run here is `not run` with
its reason, never counted as passed.
"""

from __future__ import annotations

import json
import sys

from .. import checks, pieces, report
from ..checks import NOT_RUN, PieceReport
from ..checks.registry import checks_for
from ..errors import WARNING
from ..tosca_types import UrlMap
from . import add_input_options, add_map_url_option

WARNINGS_HEADING = "warnings (house rules of this repository, never a failure):"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "check",
        help="validate templates, input cases, roles and images with the real tools",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument(
        "selectors",
        nargs="*",
        metavar="PIECE",
        help="piece name, kind (e.g. tosca-case) or any template file; default: everything",
    )
    add_input_options(parser)
    add_map_url_option(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    return parser


def run(args) -> int:
    url_map = UrlMap.parse(args.map_url)
    everything = pieces.discover()
    selected = pieces.select(args.selectors, everything)
    case_owners = {p.related[0].stem for p in everything if p.kind == "tosca-case"}
    reports: list[PieceReport] = []
    for piece in selected:
        options = {"has_cases": piece.own and piece.name in case_owners, "url_map": url_map}
        if piece.kind == "tosca-template" and (args.inputs or args.set_options):
            options.update(input_files=args.inputs, set_options=args.set_options)
        if not args.json:
            print(f"checking {piece.kind} {piece.name}", file=sys.stderr, flush=True)
        reports.append(checks.run_checks(piece, checks_for(piece.kind), options))
    if args.json:
        summary = {
            "failed": any(r.failed for r in reports),
            "warnings": sum(r.warnings for r in reports),
            "pieces": [r.as_dict() for r in reports],
        }
        print(json.dumps(summary, indent=2))
    else:
        print(render_table(reports))
    return 1 if any(r.failed for r in reports) else 0


def _kind_table(reports: list[PieceReport]) -> str:
    names: list[str] = []
    for piece_report in reports:
        names.extend(r.check for r in piece_report.results if r.check not in names)
    rows = []
    for piece_report in reports:
        by_name = {r.check: r.status for r in piece_report.results}
        rows.append([piece_report.piece.name, *[by_name.get(name, "") for name in names]])
    return report.table([reports[0].piece.kind, *names], rows)


def render_table(reports: list[PieceReport]) -> str:
    """One table per kind of piece (each kind has its own checks), then the errors, the
    warnings and the checks that did not run, each under its own heading."""
    kinds: dict[str, list[PieceReport]] = {}
    for piece_report in reports:
        kinds.setdefault(piece_report.piece.kind, []).append(piece_report)
    lines = []
    for group in kinds.values():
        lines += [_kind_table(group), ""]
    sections: dict[str, list[str]] = {"problems:": [], WARNINGS_HEADING: []}
    notes = []
    for piece_report in reports:
        for result in piece_report.results:
            for problem in result.problems:
                heading = list(sections)[problem.severity == WARNING]
                sections[heading].append(f"  {problem}  [{result.check}]")
            if result.status == NOT_RUN:
                notes.append(f"  {piece_report.piece.display_path}: {result.check} not run: {result.reason}")
    sections["notes:"] = notes
    for heading, entries in sections.items():
        if entries:
            lines += [heading, *entries, ""]
    failed = sum(r.failed for r in reports)
    warnings = sum(r.warnings for r in reports)
    not_run = sum(1 for r in reports for x in r.results if x.status == NOT_RUN)
    lines.append(f"{len(reports)} pieces, {failed} failed, {warnings} warnings, {not_run} checks not run")
    return "\n".join(lines)
