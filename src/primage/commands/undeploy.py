"""`primage undeploy ID`: delete an infrastructure and every VM of it through IM.

The IM comes from --im/--auth, else PRIMAGE_IM_URL/PRIMAGE_IM_AUTH, else the record of
`primage deploy`, which is dropped once IM has deleted the infrastructure.
"""

from __future__ import annotations

import sys

from .. import infra
from ..im_rest import IMNotFound
from .infra import add_im_options, add_wait_options, print_json


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "undeploy",
        help="delete an infrastructure deployed through IM, with all its VMs",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    parser.add_argument("id", metavar="ID")
    add_im_options(parser)
    add_wait_options(parser)
    return parser


def run(args) -> int:
    im, record = infra.connect(args.id, args.im, args.auth)
    if not args.no_wait:
        print(f"==> deleting {args.id} at {im.url}", file=sys.stderr, flush=True)
    try:
        if args.no_wait:
            im.destroy(args.id, background=True)
            state = "deleting"
        else:
            infra.undeploy(im, args.id, args.timeout)
            state = "deleted"
    except IMNotFound:
        if record is not None:
            infra.forget(args.id)
            print(f"primage: forgot {args.id}, which IM at {im.url} no longer has", file=sys.stderr)
        raise
    if state == "deleted":
        infra.forget(args.id)
    if args.json:
        print_json({"id": args.id, "im_url": im.url, "state": state})
    else:
        print(f"{args.id} {state}")
    return 0
