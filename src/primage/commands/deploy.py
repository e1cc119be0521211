"""`primage deploy TEMPLATE [-i FILE]... [--set NAME=VALUE]... --im URL --auth FILE`.

Deploys a TOSCA template through IM's REST API, rendered as `primage render` does (the
same input checks, secrets only from private files) at --artifacts release by default,
or a RADL file (an EC3 composition, say) as it is. Follows IM until every VM has a final
state (or --no-wait, or --timeout), and remembers which IM and auth file the
infrastructure lives at, so `primage infra ...` and `primage undeploy ID` need neither.
"""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

from .. import infra, tosca, tosca_semantics, yamlio
from ..errors import PrimageError, UsageError
from ..im_rest import IMError
from . import add_input_options
from .infra import add_im_options, add_wait_options, report_result
from .render import resolve_template


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "deploy",
        help="deploy a TOSCA template (or a RADL file) through IM and follow it",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    parser.add_argument(
        "template", metavar="TEMPLATE", help="template name (see `primage list`), TOSCA file or RADL file"
    )
    add_input_options(parser)
    parser.add_argument(
        "--artifacts",
        choices=tosca.ARTIFACT_MODES,
        default="release",
        help="where imports and playbooks point: the pinned release (default) or this checkout (an IM on this "
        "machine, which reads them from here)",
    )
    add_im_options(parser)
    add_wait_options(parser)
    return parser


def is_radl(name: str) -> bool:
    path = Path(name)
    return path.suffix == ".radl" or (
        path.is_file() and not tosca.is_topology(path) and path.suffix not in (".yaml", ".yml")
    )


def tosca_document(args) -> tuple[str, str]:
    """(document, source) of a TOSCA template rendered with the inputs given, refused when broken."""
    tpl = tosca.load(resolve_template(args.template))
    values = tosca.input_values(args.inputs, args.set_options)
    document = tosca.render(tpl, values, args.artifacts)
    # The mistakes IM would answer cryptically (unknown node type, dangling requirement...);
    # an import this machine cannot fetch makes no type unknown (the catalog says so).
    problems = [
        problem
        for problem in tosca_semantics.semantic_problems(tpl, tosca.template_types(tpl))
        if problem.severity == "error"
    ]
    if problems:
        raise tosca.RenderError(problems)
    return yamlio.dump(document), tpl.display


# A RADL feature given a quoted value: `name = '...'` (EC3 writes `auth = '...'`, tokens, passwords).
_FEATURE = re.compile(r"([A-Za-z_][\w.]*)\s*=\s*'")


def radl_document(args) -> tuple[str, str]:
    if args.inputs or args.set_options:
        raise UsageError("-i/--set give input values of TOSCA templates; a RADL file holds its values itself")
    path = Path(args.template)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such RADL file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PrimageError(f"cannot read the RADL file: {exc}", file=path) from None
    secrets = sorted(
        {name for name in _FEATURE.findall(text) if name == "auth" or tosca.is_secret(name.split(".")[-1])}
    )
    if secrets and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrimageError(
            f"holds {', '.join(secrets)} (EC3 puts the whole auth file in 'auth') but other users can read it; "
            f"run: chmod 600 {path}",
            file=path,
        )
    return text, str(path)


def run(args) -> int:
    im = infra.deploy_client(args.im, args.auth)
    kind = "radl" if is_radl(args.template) else "tosca"
    document, source = radl_document(args) if kind == "radl" else tosca_document(args)
    try:
        infrastructure = im.create(document, kind, source)
    except IMError as exc:
        if kind == "tosca" and args.artifacts == "release" and "Failed to reach server" in exc.text:
            exc.problem.message += (
                " (IM fetches the release's types and playbooks from the repository's host; an IM that cannot "
                "reach it needs --artifacts local, with this checkout at the same path on IM's machine)"
            )
        raise
    record = infra.Record(
        id=infrastructure,
        im_url=im.url,
        auth_file=str(im.credentials.source),
        source=source,
        kind=kind,
        created=infra.now(),
        artifacts=args.artifacts if kind == "tosca" else None,
    )
    print(f"==> IM at {im.url} accepted {source}: infrastructure {infrastructure}", file=sys.stderr, flush=True)
    infra.remember(record)  # before waiting: a Ctrl-C or a timeout leaves it known
    return report_result(args, im, infrastructure, record, "deploying")
