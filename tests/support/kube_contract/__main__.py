"""Command line: `python3 -m kube_contract serve|dump|kubeconfig ...` (run from the folder above)."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import signal
import sys
from pathlib import Path

from .server import ContractServer


def _serve(args: argparse.Namespace) -> int:
    token = Path(args.token_file).read_text(encoding="utf-8").strip() if args.token_file else None
    server = ContractServer(
        args.host,
        args.port,
        request_log=args.request_log,
        state_file=args.state_file,
        kubernetes_version=args.kubernetes_version,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        token=token,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"kube_contract serving {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    return 0


def _dump(args: argparse.Namespace) -> int:
    """Write each stored object of a state file as <out>/<kind>-<namespace>-<name>.json."""
    state = json.loads(Path(args.state_file).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for obj in state.get("objects", []):
        meta = obj["metadata"]
        name = "-".join(p for p in (obj["kind"].lower(), meta.get("namespace", ""), meta["name"]) if p)
        (out / f"{name}.json").write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(out / f"{name}.json")
    return 0


def _b64file(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def _kubeconfig(args: argparse.Namespace) -> int:
    """Print a kubeconfig (JSON, which is YAML) for the server, like kubeadm's admin.conf."""
    cluster = {"server": args.server}
    if args.ca:
        cluster["certificate-authority-data"] = _b64file(args.ca)
    user: dict = {}
    if args.client_cert:
        user = {
            "client-certificate-data": _b64file(args.client_cert),
            "client-key-data": _b64file(args.client_key),
        }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": args.cluster, "cluster": cluster}],
        "users": [{"name": args.user, "user": user}],
        "contexts": [{"name": f"{args.user}@{args.cluster}", "context": {"cluster": args.cluster, "user": args.user}}],
        "current-context": f"{args.user}@{args.cluster}",
    }
    print(json.dumps(config, indent=2))
    return 0


def _scan(args: argparse.Namespace) -> int:
    """Report process command lines and world-readable files holding a stored Secret value."""
    from .scan import scan

    report = scan(args.state_file, args.root or None)
    print(json.dumps(report, indent=2))
    return 1 if report["processes"] or report["world_readable_files"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m kube_contract", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Kubernetes API contract")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=6443)
    serve.add_argument("--request-log", help="append every request here (JSON Lines, mode 0600)")
    serve.add_argument("--state-file", help="keep the stored objects here (JSON, mode 0600), reloaded on start")
    serve.add_argument("--kubernetes-version", default="v1.36.3", help="gitVersion reported by /version")
    serve.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    serve.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    serve.add_argument("--token-file", help="require `Authorization: Bearer <token in this file>`")
    serve.set_defaults(func=_serve)
    dump = sub.add_parser("dump", help="write the objects of a state file, one JSON file each")
    dump.add_argument("--state-file", required=True)
    dump.add_argument("--out", required=True)
    dump.set_defaults(func=_dump)
    kubeconfig = sub.add_parser("kubeconfig", help="print a kubeconfig for a server")
    kubeconfig.add_argument("--server", required=True)
    kubeconfig.add_argument("--ca")
    kubeconfig.add_argument("--client-cert")
    kubeconfig.add_argument("--client-key")
    kubeconfig.add_argument("--cluster", default="kubernetes")
    kubeconfig.add_argument("--user", default="kubernetes-admin")
    kubeconfig.set_defaults(func=_kubeconfig)
    scan = sub.add_parser("scan-secrets", help="find stored Secret values in command lines and readable files")
    scan.add_argument("--state-file", required=True)
    scan.add_argument("--root", action="append", help="folder to scan (repeatable; default /)")
    scan.set_defaults(func=_scan)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
