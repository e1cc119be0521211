"""`primage check [PIECE|KIND|FILE ...]`: validate pieces with the real tools of the field.

Prints a table of piece by check (pass, FAIL, not run, n/a), then every problem as
`file:line (field): message`. Exit 0 when nothing failed, 1 when something did. A
check that cannot run here is `not run` with its reason, never counted as passed.
"""

from __future__ import annotations

import json
import sys

from .. import checks, pieces, report
from ..checks import NOT_RUN, PieceReport
from ..checks.registry import checks_for
from . import add_input_options


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
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    return parser


def run(args) -> int:
    selected = pieces.select(args.selectors)
    case_owners = {p.related[0].stem for p in pieces.discover() if p.kind == "tosca-case"}
    reports: list[PieceReport] = []
    for piece in selected:
        options = {"has_cases": piece.name in case_owners}
        if piece.kind == "tosca-template" and (args.inputs or args.set_options):
            options.update(input_files=args.inputs, set_options=args.set_options)
        if not args.json:
            print(f"checking {piece.kind} {piece.name}", file=sys.stderr, flush=True)
        reports.append(checks.run_checks(piece, checks_for(piece.kind), options))
    if args.json:
        print(
            json.dumps({"failed": any(r.failed for r in reports), "pieces": [r.as_dict() for r in reports]}, indent=2)
        )
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
    """One table per kind of piece (each kind has its own checks), then the problems."""
    kinds: dict[str, list[PieceReport]] = {}
    for piece_report in reports:
        kinds.setdefault(piece_report.piece.kind, []).append(piece_report)
    lines = []
    for group in kinds.values():
        lines += [_kind_table(group), ""]
    details = []
    for piece_report in reports:
        for result in piece_report.results:
            for problem in result.problems:
                details.append(f"  {problem}  [{result.check}]")
            if result.status == NOT_RUN:
                details.append(f"  {piece_report.piece.display_path}: {result.check} not run: {result.reason}")
    if details:
        lines += ["problems:" if any(r.failed for r in reports) else "notes:", *details, ""]
    failed = sum(r.failed for r in reports)
    not_run = sum(1 for r in reports for x in r.results if x.status == NOT_RUN)
    lines.append(f"{len(reports)} pieces, {failed} failed, {not_run} checks not run")
    return "\n".join(lines)
