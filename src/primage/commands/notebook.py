"""`primage notebook start|url|stop`: the interactive application, JupyterLab on the space.

`start` renders the jupyter workload (the StatefulSet, its Service and token Secret, from the
role's templates) and runs it on a backend; locally the StatefulSet's container on the Docker
engine, published on the loopback, its home a volume kept across restarts. The token is made
once and kept in a mode-0600 file; the notebook reads it from a mounted file (JUPYTER_TOKEN_FILE),
so it is in no process's arguments, no container's environment and no log. `url` gives the
address without the token; `url --with-token` shows the full one.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import engine
from ..apps import backend as backends
from ..apps import inputs, model, onedata, prepare
from ..errors import UsageError
from .htc import add_backend_options, check_same

JUPYTER = "jupyter"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "notebook",
        help="the interactive application: start, url, stop a Jupyter notebook on a space",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="notebook_action", metavar="ACTION")
    actions.required = True
    start = actions.add_parser("start", help="start a notebook (or find it running) and print its URL")
    start.add_argument("name", metavar="NAME", help="notebook name (an RFC 1123 label)")
    where = start.add_mutually_exclusive_group()
    where.add_argument("--space", type=Path, metavar="DIR", help="the space folder the notebook sees at /mnt/onedata")
    where.add_argument("--onedata", metavar="SPACE", help="a Onedata space the cluster mounts (kubernetes backend)")
    start.add_argument("--image", metavar="IMAGE", help="notebook image (default: the jupyter image of this revision)")
    start.add_argument(
        "--onedata-config", type=Path, metavar="FILE", help=f"default {onedata.default_config()}, mode 0600"
    )
    add_backend_options(start)
    start.add_argument("--json", action="store_true", help="print the notebook as JSON")
    url = actions.add_parser("url", help="the notebook's URL, without its token unless asked")
    url.add_argument("name", metavar="NAME")
    url.add_argument("--with-token", action="store_true", help="show the URL with the token (a secret: mind who looks)")
    add_backend_options(url)
    url.add_argument("--json", action="store_true", help="print JSON")
    stop = actions.add_parser("stop", help="stop the notebook; its home and token are kept for the next start")
    stop.add_argument("name", metavar="NAME")
    add_backend_options(stop)
    stop.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run_start(backend, args) -> int:
    name = model.check_name(args.name)
    access = None
    if args.onedata:
        backend.refuse_onedata(args.onedata, "notebook")
        access = onedata.load(args.onedata, args.onedata_config)
    space = inputs.check_space(args.space) if args.space else (None if access else backend.scratch_space(name))
    default = not args.image
    image = prepare.check_pinned(args.image or prepare.default_image(JUPYTER))
    submission = model.Submission(
        name=name,
        kind="notebook",
        backend=backend.name,
        image=image,
        space=str(space) if args.space else "",
        onedata=args.onedata or "",
        kubeconfig=args.kubeconfig or "",
    )
    check_same(backend, submission)
    backend.check_image(image, default)
    plan = prepare.notebook(submission, backend, space, backend.saved_token(name), access)
    app = backend.start_notebook(plan, engine.progress)
    _, token_file = backend.notebook_url(name)
    if args.json:
        print(json.dumps({**app.as_dict(with_tasks=False), "token_file": str(token_file)}, indent=2))
        return 0
    print(f"notebook {name}: {app.url}")
    print(f"  log in with the token in {token_file} (mode 0600), or open: primage notebook url {name} --with-token")
    if not args.space and not access:
        print(f"  no --space given: it sees a folder of its own, {space}, at /mnt/onedata")
    if app.note:
        print(f"  {app.note}")
    return 0


def run_url(backend, args) -> int:
    url, token_file = backend.notebook_url(args.name)
    full = f"{url}?token={token_file.read_text().strip()}" if args.with_token else url
    if args.json:
        print(json.dumps({"name": args.name, "url": full, "token_file": str(token_file)}, indent=2))
    else:
        print(full)
    return 0


def run_stop(backend, args) -> int:
    app = backend.stop_notebook(args.name)
    if args.json:
        print(json.dumps(app.as_dict(with_tasks=False), indent=2))
    else:
        print(f"notebook {args.name}: stopped (home and token kept; start it again with `{app.submission.command()}`)")
    return 0


def run(args) -> int:
    if args.kubeconfig and args.backend == "local":
        raise UsageError("--kubeconfig is for --backend kubernetes")
    backend = backends.get(args.backend, args.kubeconfig)
    handlers = {"start": run_start, "url": run_url, "stop": run_stop}
    return handlers[args.notebook_action](backend, args)
