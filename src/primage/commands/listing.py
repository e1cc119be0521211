"""`primage list [--kind KIND] [--json]`: every piece of the repository, found from the files."""

from __future__ import annotations

import json

from .. import pieces, report


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "list",
        help="list every piece (templates, input cases, roles, images, manifests)",
        description="List every piece of the repository with its kind, discovered from the files: "
        "a new template, input case, role or image shows up at once.",
    )
    parser.add_argument(
        "--kind", choices=sorted(pieces.KINDS), action="append", help="only pieces of this kind (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args) -> int:
    found = [p for p in pieces.discover() if not args.kind or p.kind in args.kind]
    if args.json:
        print(json.dumps([p.as_dict() for p in found], indent=2))
        return 0
    print(
        report.table(["piece", "kind", "path", "detail"], [[p.name, p.kind, p.display_path, p.detail] for p in found])
    )
    return 0
