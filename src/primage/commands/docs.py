"""`primage docs [--check]`: regenerate (or check) the generated parts of the documentation."""

from __future__ import annotations

import sys

from .. import roles


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "docs", help="regenerate the README sections generated from specs and templates",
        description="Rewrite each role README's options section from meta/argument_specs.yml. "
                    "With --check, change nothing and exit 1 if anything is out of date.")
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    return parser


def run(args) -> int:
    stale = []
    for role in roles.discover():
        fresh = roles.readme_with_options(role)
        if fresh is None:
            print(f"{role.readme}: no BEGIN/END OPTIONS markers", file=sys.stderr)
            stale.append(role.name)
            continue
        if fresh != role.readme.read_text(encoding="utf-8"):
            stale.append(role.name)
            if not args.check:
                role.readme.write_text(fresh, encoding="utf-8")
                print(f"updated {role.readme}")
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run `primage docs`)", file=sys.stderr)
        return 1
    return 0
