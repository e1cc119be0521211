"""`primage docs [--check]`: regenerate (or check) the documentation generated from the pieces:
the template reference and the image list in README.md, and the options section of every role README."""

from __future__ import annotations

import sys

from .. import docs, paths


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "docs",
        help="regenerate the README sections generated from templates, images and role specs",
        description="Rewrite the template reference of README.md (inputs and outputs of every TOSCA "
        "template, every RADL template), its image list (containers/*/image.yml) and each role README's "
        "options section (from "
        "meta/argument_specs.yml). With --check, change nothing and exit 1 if one is out of date.",
    )
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    return parser


def run(args) -> int:
    stale = docs.stale_documents()
    for path, text in stale.items():
        if not text:
            print(
                f"{paths.relative(path)}: no generated section markers (copy them from a neighbour)",
                file=sys.stderr,
            )
        elif args.check:
            print(f"{paths.relative(path)}: out of date (run `primage docs`)", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"updated {paths.relative(path)}")
    if args.check and stale:
        return 1
    return 1 if any(not text for text in stale.values()) else 0
