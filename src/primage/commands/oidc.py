"""`primage oidc build|serve`: the test OpenID Connect provider standing in for EGI Check-in.

ORY Hydra, built from the Go module proxy into the cache, with the project's login and
consent provider: two test users (a member of the project's Check-in group and one who is
not), Check-in's `eduperson_entitlement` claim, HTTPS on 127.0.0.1 with a CA made for the run.
`serve` runs it until Ctrl-C and writes each user's tokens into private files, for trying
`primage deploy` against a local IM (`python -m primage.im_server --oidc-issuer ...`).
"""

from __future__ import annotations

import contextlib
import json
import signal
import tempfile
import threading
from pathlib import Path

from .. import oidc, report, tls
from ..oidc import build as oidc_build
from ..oidc.provider import LocalProvider

CLIENT_ID = "primage-local"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "oidc",
        help="build or run the test OpenID Connect provider (stands in for EGI Check-in)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="oidc_action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="build the pinned ORY Hydra (cached; warm: seconds)")
    build.add_argument("--force", action="store_true", help="rebuild even when current")
    serve = actions.add_parser("serve", help="run the provider on 127.0.0.1 until Ctrl-C")
    serve.add_argument("--folder", type=Path, help="private folder for its files (default: a new temporary one)")
    return parser


def run(args) -> int:
    if args.oidc_action == "build":
        outcome = oidc_build.build(force=args.force)
        print(report.table(["component", "version", "status", "seconds"], [outcome.row()]))
        return 0
    folder = args.folder or Path(tempfile.mkdtemp(prefix="primage-oidc-"))
    with LocalProvider(folder) as provider:
        client = provider.register_client(CLIENT_ID)
        tls.write_private(
            folder / "client.json", json.dumps({"client_id": client.client_id, "secret": client.secret}).encode()
        )
        rows = []
        for user in provider.users:
            tokens = provider.authorization_code(client, user.username)
            token_file = tls.write_private(folder / f"{user.username}.token", tokens["access_token"].encode())
            tls.write_private(folder / f"{user.username}.refresh_token", tokens["refresh_token"].encode())
            member = "yes" if oidc.PROJECT_GROUP in user.entitlements else "no"
            rows.append([user.username, member, str(token_file)])
        print(f"issuer:   {provider.issuer}\nCA:       {provider.ca}\nusers:    {folder / 'users.json'} (passwords)")
        print(f"client:   {folder / 'client.json'}\n")
        print(report.table(["user", "in the project group", "access token (1 h)"], rows))
        print(
            f"\nIM accepting them: python -m primage.im_server --port 8800 --db sqlite://{folder}/im.db "
            f"--log {folder}/im.log --oidc-issuer {provider.issuer} --oidc-group '{oidc.PROJECT_GROUP}' "
            f"--ca-bundle {provider.ca}\nauth line: id = im; type = InfrastructureManager; token = "
            f"file({folder}/member.token)\nCtrl-C stops the provider.",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0
