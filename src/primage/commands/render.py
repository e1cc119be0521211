"""`primage render TEMPLATE [-i FILE] [--set NAME=VALUE] [-o OUT] [--artifacts local|release]`.

Applies input values (as the inputs' defaults, which IM and the EC3 portal read), makes
imports and artifact repositories absolute and writes an upload-ready template.
`--artifacts release` (the default) points them at the pinned release of this repository,
for upload; `local` at this checkout, for offline validation and a local IM. Unknown
inputs, missing required inputs and wrong types are refused with the file, the field and
what was expected. A template holding a secret is only written to a file (mode 0600).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .. import paths, pieces, tosca, yamlio
from ..errors import PrimageError, UsageError
from ..tosca_types import UrlMap
from . import add_input_options, add_map_url_option


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "render",
        help="apply inputs and write an upload-ready TOSCA template",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    parser.add_argument("template", metavar="TEMPLATE", help="template name (see `primage list`) or file")
    add_input_options(parser)
    add_map_url_option(parser)
    parser.add_argument("-o", "--output", metavar="OUT", help="file to write (default: standard output)")
    parser.add_argument(
        "--artifacts",
        choices=tosca.ARTIFACT_MODES,
        default="release",
        help="where imports and playbooks point: the pinned release (default) or this checkout",
    )
    return parser


_RADL_STATEMENT = re.compile(r"^\s*(description|system|network|configure|deploy|include|contextualize)\s+\S+", re.M)


def _is_radl(path: Path) -> bool:
    if path.suffix == ".radl":
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "tosca_definitions_version" not in head and bool(_RADL_STATEMENT.search(head))


def _not_for_radl(what: str, before: str = "") -> UsageError:
    return UsageError(
        f"{before}{what} is an EC3 RADL template, and render takes a TOSCA topology (tosca/*.yaml: "
        f"see `primage list --kind tosca-template`). RADL templates are composed by EC3, with your "
        f"values in a private template: `ec3 launch NAME kubernetes oneclient htc_batch debian13 "
        f"my_values -a auth.dat -u IM_URL`; the compositions in radl/ci/ show which templates go "
        f"together, and `primage check radl/ci/<composition>.yaml` composes one offline"
    )


def resolve_template(name: str) -> Path:
    candidate = Path(name)
    if candidate.exists():
        if _is_radl(candidate):
            raise _not_for_radl(str(candidate))
        return candidate
    found = pieces.discover()
    for piece in found:
        if piece.kind == "tosca-template" and piece.name == name:
            return piece.path
    templates = [p.name for p in found if p.kind == "tosca-template"]
    unknown = f"no TOSCA template '{name}' (templates: {', '.join(templates)}; or give a file path)"
    if any(piece.kind == "radl-template" and piece.name == name for piece in found):
        raise _not_for_radl(f"'{name}'", before=f"{unknown}: ")
    raise UsageError(unknown)


def run(args) -> int:
    tpl = tosca.load(resolve_template(args.template))
    values = tosca.input_values(args.inputs, args.set_options)
    document = tosca.render(tpl, values, args.artifacts, url_map=UrlMap.parse(args.map_url))
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
