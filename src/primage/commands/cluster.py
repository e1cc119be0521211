"""`primage cluster build|up|down|status|kubeconfig|load`: the real test cluster.

A one-node Kubernetes of the kubernetes role's pinned version, built from the Go module
proxy and Debian's archive, run as processes of this host on a bridge of its own, for tests
and trials (not for production). `up` waits until the node is Ready; `down` stops exactly
what `up` started and restores the host.
"""

from __future__ import annotations

import json

from .. import cluster, report
from ..errors import UsageError


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "cluster",
        help="build, start and stop the real one-node test cluster",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="cluster_action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser("build", help="build the pinned binaries and images (cached; warm: seconds)")
    build.add_argument("components", nargs="*", metavar="COMPONENT", help="only these (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild even what is current")
    up = actions.add_parser("up", help="start the cluster and wait until the node is Ready")
    up.add_argument(
        "--image", action="append", default=[], metavar="IMAGE", help="import this image from Docker (repeatable)"
    )
    up.add_argument("--api-port", type=int, default=0, help="API server port (default: the role's, 6443)")
    up.add_argument("--no-fuse-plugin", action="store_true", help="do not deploy the FUSE device plugin")
    actions.add_parser("down", help="stop the cluster and restore the host")
    status = actions.add_parser("status", help="components, memory and node readiness")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    actions.add_parser("kubeconfig", help="print the path of the admin kubeconfig (mode 0600)")
    load = actions.add_parser("load", help="import images from the local Docker engine into the cluster")
    load.add_argument("images", nargs="+", metavar="IMAGE")
    return parser


def run(args) -> int:
    action = args.cluster_action
    if action == "build":
        outcomes = cluster.build(args.components or None, force=args.force)
        print(report.table(["component", "version", "status", "seconds"], [o.row() for o in outcomes]))
        return 0
    if action == "up":
        if args.api_port and not 1 <= args.api_port <= 65535:
            raise UsageError(f"--api-port must be a port number (1-65535), got {args.api_port}")
        settings = cluster.Settings(api_port=args.api_port)
        state = cluster.up(settings, images=args.image, fuse_plugin=not args.no_fuse_plugin)
        layout = cluster.Layout()
        print(f"cluster up in {state.timings['up']} s: API {settings.api_url}, node {settings.node_name} Ready")
        print(f"kubeconfig: {layout.admin_kubeconfig}   (export KUBECONFIG=$(primage cluster kubeconfig))")
        return 0
    if action == "down":
        done = cluster.down()
        if not done["stopped"]:
            print("no cluster is up")
            return 0
        print(f"cluster down in {done['seconds']} s: stopped {', '.join(done['stopped'])}")
        for what in ("sysctls", "iptables", "interfaces", "folders"):
            if done.get(what):
                print(f"  restored {what}: {', '.join(done[what])}")
        return 0
    if action == "status":
        return _status(args.json)
    if action == "kubeconfig":
        print(cluster.require_up().admin_kubeconfig)
        return 0
    outcomes = cluster.load_images(args.images, cluster.require_up())
    print(report.table(["image", "status"], sorted(outcomes.items())))
    return 0


def _status(as_json: bool) -> int:
    current = cluster.status()
    if as_json:
        print(json.dumps(current, indent=2))
        return 0 if current["up"] else 1
    if not current["processes"]:
        print("no cluster is up")
        return 1
    rows = [[p["name"], p["pid"], "running" if p["alive"] else "exited", p["rss_mib"]] for p in current["processes"]]
    rows.append([f"{current['shims']} containerd shims", "", "", current["shims_rss_mib"]])
    print(report.table(["component", "pid", "state", "RSS MiB"], rows))
    total = sum(p["rss_mib"] for p in current["processes"]) + current["shims_rss_mib"]
    print(
        f"\n{current['phase']}; node {current['node']} {'Ready' if current['node_ready'] else 'not Ready'}; "
        f"API {current['api']}; resident {total:.0f} MiB; kubeconfig {current['kubeconfig']}"
    )
    return 0 if current["up"] else 1
