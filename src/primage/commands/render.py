"""`primage render TEMPLATE [-i FILE] [--set NAME=VALUE] [-o OUT] [--artifacts local|release]`.

Applies input values (as the inputs' defaults, which IM and the EC3 portal read), makes
imports and artifact repositories absolute and writes an upload-ready template.
`--artifacts release` (the default) points them at the pinned release of this repository,
for upload; `local` at this checkout, for offline validation and a local IM. Unknown
inputs, missing required inputs and wrong types are refused with the file, the field and
what was expected. A template holding a secret is only written to a file (mode 0600).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import paths, pieces, tosca, yamlio
from ..errors import PrimageError, UsageError
from . import add_input_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "render",
        help="apply inputs and write an upload-ready TOSCA template",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    parser.add_argument("template", metavar="TEMPLATE", help="template name (see `primage list`) or file")
    add_input_options(parser)
    parser.add_argument("-o", "--output", metavar="OUT", help="file to write (default: standard output)")
    parser.add_argument(
        "--artifacts",
        choices=tosca.ARTIFACT_MODES,
        default="release",
        help="where imports and playbooks point: the pinned release (default) or this checkout",
    )
    return parser


def resolve_template(name: str) -> Path:
    candidate = Path(name)
    if candidate.exists():
        return candidate
    for piece in pieces.discover():
        if piece.kind == "tosca-template" and piece.name == name:
            return piece.path
    templates = [p.name for p in pieces.discover() if p.kind == "tosca-template"]
    raise UsageError(f"no TOSCA template '{name}' (templates: {', '.join(templates)}; or give a file path)")


def run(args) -> int:
    tpl = tosca.load(resolve_template(args.template))
    values = tosca.input_values(args.inputs, args.set_options)
    document = tosca.render(tpl, values, args.artifacts)
    text = f"# Rendered by primage from {tpl.display} ({args.artifacts} artifacts)\n---\n" + yamlio.dump(document)
    secret_names = tosca.secret_values(tpl, values)
    if args.output:
        output = Path(args.output)
        if secret_names:
            tosca.write_private(output, text)
            print(f"wrote {output} (mode 0600: it holds {', '.join(secret_names)})", file=sys.stderr)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            print(f"wrote {paths.relative(output)}", file=sys.stderr)
        return 0
    if secret_names:
        raise PrimageError(
            f"the rendered template holds the secret {', '.join(secret_names)}; write it to a "
            "private file with -o FILE instead of standard output"
        )
    sys.stdout.write(text)
    return 0
