"""`primage infra list|show|reconfigure|add|remove`: infrastructures deployed through IM.

Which IM an infrastructure lives at comes from --im/--auth, else PRIMAGE_IM_URL and
PRIMAGE_IM_AUTH, else the record `primage deploy` kept. Tables by default, --json for
scripts. Exit codes: 0 done (configured), 1 error or final state not configured, 2 bad
arguments, 3 IM not answering, 4 credentials refused, 5 no such infrastructure, 6 timed
out waiting, 130 stopped waiting (Ctrl-C; IM goes on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from .. import infra, infra_scale, report, tosca
from ..errors import PrimageError, UsageError
from ..im_rest import IMNotFound
from . import add_input_options

LOG_LINES = 20


def add_im_options(parser) -> None:
    parser.add_argument("--im", metavar="URL", help=f"IM's REST endpoint (default: ${infra.ENV_URL}, or the record)")
    parser.add_argument(
        "--auth",
        metavar="FILE",
        help=f"IM auth file, readable only by you (default: ${infra.ENV_AUTH}, or the record); its "
        "InfrastructureManager line may log in with a Check-in access token: token = oidc-agent(ACCOUNT), "
        "command(oidc-token ACCOUNT) or file(PATH)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_wait_options(parser) -> None:
    parser.add_argument("--no-wait", action="store_true", help="return at once; IM goes on")
    parser.add_argument(
        "--timeout",
        type=float,
        default=infra.DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"most time to wait for a final state (default {infra.DEFAULT_TIMEOUT})",
    )


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got '{text}'")
    return value


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "infra",
        help="list, inspect, reconfigure and scale infrastructures deployed through IM",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    commands = parser.add_subparsers(dest="infra_command", metavar="ACTION", parser_class=type(parser))
    commands.required = True

    listing = commands.add_parser("list", help="your infrastructures, with state and VM count")
    add_im_options(listing)

    show = commands.add_parser("show", help="state per VM, outputs and the contextualization log")
    show.add_argument("id", metavar="ID")
    add_im_options(show)
    show.add_argument(
        "--log-lines",
        type=int,
        default=LOG_LINES,
        metavar="N",
        help=f"last lines of the contextualization log to print (default {LOG_LINES}; 0: all)",
    )

    reconfigure = commands.add_parser(
        "reconfigure", help="contextualize again, with new input values (-i, --set) for a TOSCA infrastructure"
    )
    reconfigure.add_argument("id", metavar="ID")
    add_input_options(reconfigure)
    add_im_options(reconfigure)
    add_wait_options(reconfigure)

    for action, text in (("add", "deploy more workers"), ("remove", "remove the newest workers")):
        scale = commands.add_parser(action, help=f"{text} of the elastic cluster")
        scale.add_argument("id", metavar="ID")
        scale.add_argument("--workers", type=positive, required=True, metavar="N", help="how many")
        scale.add_argument(
            "--node",
            metavar="NAME",
            help="the worker node (TOSCA node or RADL system; default: the only scalable node, or system wn)",
        )
        add_im_options(scale)
        add_wait_options(scale)
    return parser


def run(args) -> int:
    return {
        "list": run_list,
        "show": run_show,
        "reconfigure": run_reconfigure,
        "add": run_scale,
        "remove": run_scale,
    }[args.infra_command](args)


# --------------------------------------------------------------------------- output


def print_json(data) -> None:
    print(json.dumps(data, indent=2))


def _ips(ips: list[str]) -> str:
    return ", ".join(ips) or "-"


def vm_table(vms: list[dict]) -> str:
    rows = [
        [
            vm["id"],
            vm["node"],
            vm["state"],
            _ips(vm["public_ips"]),
            _ips(vm["private_ips"]),
            vm["cpus"] if vm["cpus"] is not None else "-",
            vm["memory"] or "-",
            vm["provider"] or "-",
        ]
        for vm in vms
    ]
    return report.table(["vm", "node", "state", "public ip", "private ip", "cpus", "memory", "provider"], rows)


def _value(value) -> str:
    if value is None:
        return "(none)"  # e.g. an address IM does not know yet
    return value if isinstance(value, str) else json.dumps(value)


def summary_text(shown: dict) -> str:
    origin = shown["source"] or "not deployed by primage here"
    if shown["created"]:
        origin += f" ({shown['kind']}, deployed {shown['created']})"
    lines = [
        f"infrastructure  {shown['id']}",
        f"IM              {shown['im_url']}",
        f"from            {origin}",
        f"state           {shown['state']}",
        "",
        vm_table(shown["vms"]) if shown["vms"] else "no VM",
    ]
    if shown["outputs"]:
        width = max(len(name) for name in shown["outputs"])
        lines += ["", "outputs"] + [f"  {name:<{width}}  {_value(v)}" for name, v in shown["outputs"].items()]
    return "\n".join(lines)


def log_text(contmsg: str, last: int) -> str:
    lines = contmsg.rstrip().splitlines()
    if not lines:
        return "contextualization log: empty"
    shown = lines if last <= 0 else lines[-last:]
    head = (
        "contextualization log"
        if len(shown) == len(lines)
        else f"contextualization log (last {len(shown)} of {len(lines)} lines; --log-lines 0 for all)"
    )
    return "\n".join([head, *(f"  {line}" for line in shown)])


def final_code(state: dict, infrastructure: str) -> int:
    """0 when configured; otherwise say which VMs are not and where the log is."""
    if state["state"] == "configured":
        return 0
    troubled = [vm for vm, s in sorted(state["vm_states"].items()) if s != "configured"]
    which = f" (VMs {', '.join(troubled)})" if troubled and len(troubled) < len(state["vm_states"]) else ""
    print(
        f"primage: infrastructure {infrastructure} is {state['state']}{which}; its contextualization log: "
        f"primage infra show {infrastructure}",
        file=sys.stderr,
    )
    return 1


def report_result(args, im, infrastructure: str, record, activity: str, extra: dict | None = None) -> int:
    """Wait (unless --no-wait), then print the infrastructure as a table or JSON."""
    state = None if args.no_wait else infra.wait(im, infrastructure, activity, args.timeout)
    shown = infra.describe(im, infrastructure, record)
    shown.update(extra or {})
    if args.json:
        print_json({key: value for key, value in shown.items() if key != "contmsg"})
    else:
        print(summary_text(shown))
    return final_code(state, infrastructure) if state else 0


# --------------------------------------------------------------------------- actions


def _targets(args) -> list[tuple]:
    """(client, records) per IM to list: the one named, else every IM some record points at."""
    records = infra.load_records()
    url = args.im or os.environ.get(infra.ENV_URL)
    if url:
        auth = args.auth or os.environ.get(infra.ENV_AUTH)
        if not auth:
            auth = next((r.auth_file for r in records.values() if r.im_url.rstrip("/") == url.rstrip("/")), None)
        if not auth:
            raise UsageError(f"no IM credentials for {url}: give --auth FILE (or set {infra.ENV_AUTH})")
        chosen = infra.client(url, auth)
        return [(chosen, {k: r for k, r in records.items() if r.im_url.rstrip("/") == chosen.url})]
    groups: dict[tuple[str, str], dict] = {}
    for key, record in records.items():
        groups.setdefault((record.im_url, record.auth_file), {})[key] = record
    return [(infra.client(url, auth), members) for (url, auth), members in groups.items()]


def run_list(args) -> int:
    targets = _targets(args)
    if not targets:
        print(
            f"primage: no infrastructure recorded in {infra.records_file()}; give --im URL --auth FILE to list an IM's",
            file=sys.stderr,
        )
    rows, code = [], 0
    for im, records in targets:
        try:
            listed = im.infrastructures()
        except PrimageError as exc:
            if len(targets) == 1:
                raise
            print(f"primage: {exc}", file=sys.stderr)  # the other IMs are still worth listing
            code = code or exc.exit_code
            rows += [_row(record.id, im.url, "error", None, record) for record in records.values()]
            continue
        gone = [key for key in records if key not in listed]
        if gone:
            infra.forget(*gone)
            print(f"primage: IM at {im.url} no longer has {', '.join(gone)}: forgotten", file=sys.stderr)
        for infrastructure, state in _states(im, listed):
            rows.append(
                _row(infrastructure, im.url, state["state"], len(state["vm_states"]), records.get(infrastructure))
            )
    if args.json:
        print_json(rows)
    else:
        print(
            report.table(
                ["id", "state", "vms", "from", "IM", "deployed"],
                [
                    [
                        r["id"],
                        r["state"],
                        "-" if r["vms"] is None else r["vms"],
                        r["source"] or "-",
                        r["im_url"],
                        r["created"] or "-",
                    ]
                    for r in rows
                ],
            )
        )
    return code


def _states(im, infrastructures: list[str]) -> list[tuple[str, dict]]:
    """IM's state of each infrastructure (one request each: in parallel), skipping any deleted meanwhile."""

    def state(infrastructure: str) -> dict | None:
        try:
            return im.state(infrastructure)
        except IMNotFound:
            return None

    if not infrastructures:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(infrastructures))) as pool:
        states = list(pool.map(state, infrastructures))
    return [(key, found) for key, found in zip(infrastructures, states, strict=True) if found is not None]


def _row(infrastructure: str, url: str, state: str, count: int | None, record) -> dict:
    return {
        "id": infrastructure,
        "state": state,
        "vms": count,
        "source": record.source if record else None,
        "im_url": url,
        "created": record.created if record else None,
    }


def run_show(args) -> int:
    im, record = infra.connect(args.id, args.im, args.auth)
    shown = infra.describe(im, args.id, record)
    if args.json:
        print_json(shown)
    else:
        print(summary_text(shown))
        print()
        print(log_text(shown["contmsg"], args.log_lines))
    return 0


def run_reconfigure(args) -> int:
    im, record = infra.connect(args.id, args.im, args.auth)
    extra = {}
    if args.inputs or args.set_options:
        values = tosca.input_values(args.inputs, args.set_options)
        extra["added"] = infra_scale.update_inputs(im, args.id, values)
    else:
        im.reconfigure(args.id)
    return report_result(args, im, args.id, record, "reconfiguring", extra)


def run_scale(args) -> int:
    im, record = infra.connect(args.id, args.im, args.auth)
    if args.infra_command == "add":
        node, changed = infra_scale.add_workers(im, args.id, args.workers, args.node)
        print(
            f"==> {args.id}: {len(changed)} workers of node '{node}' added: VMs {', '.join(changed)}", file=sys.stderr
        )
        extra, activity = {"node": node, "added": changed}, "adding workers to"
    else:
        node, changed = infra_scale.remove_workers(im, args.id, args.workers, args.node)
        print(f"==> {args.id}: workers of node '{node}' removed: VMs {', '.join(changed)}", file=sys.stderr)
        extra, activity = {"node": node, "removed": changed}, "removing workers of"
    return report_result(args, im, args.id, record, activity, extra)
