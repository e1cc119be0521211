"""HTTP front of the contract server: routing, content types, the request log, TLS and auth.

Routes (the subset of the Kubernetes REST API the kubernetes Python client's dynamic
client and kubernetes.core use):

    GET    /version  /api  /api/v1  /apis  /apis/<group>  /apis/<group>/<version>
    GET    /healthz  /livez  /readyz
    GET    <collection>             list (labelSelector, fieldSelector)
    POST   <collection>             create
    DELETE <collection>             deletecollection (labelSelector, fieldSelector)
    GET    <collection>/<name>[/status]
    PUT    <collection>/<name>[/status]    replace (409 on a stale resourceVersion)
    PATCH  <collection>/<name>[/status]    merge-patch+json, strategic-merge-patch+json,
                                           apply-patch+yaml (server-side apply; JSON body)
    DELETE <collection>/<name>

where <collection> is /api/v1/[namespaces/<ns>/]<plural> or
/apis/<group>/<version>/[namespaces/<ns>/]<plural>. `dryRun=All`, `fieldManager` and
`force` are honoured; `watch` is refused with 400.

Test plumbing outside the Kubernetes API (never logged): GET /_contract/objects (every
stored object, a v1 List) and GET /_contract/requests (the request log as a JSON list).

Every other request is appended to the request log (JSON Lines, mode 0600): time, method,
path, query, content_type, user_agent, status, and body (parsed JSON, else text).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import catalog, errors
from .errors import ApiError
from .store import Store

JSON = "application/json"
PATCH_TYPES = (
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


class RequestLog:
    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None
        self.lock = threading.Lock()
        self.entries: list[dict] = []

    def append(self, entry: dict) -> None:
        with self.lock:
            self.entries.append(entry)
            if self.path:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, sort_keys=True) + "\n")


def _flag(query: dict, name: str) -> bool:
    return query.get(name, [""])[-1].lower() in ("true", "1")


def _user_agent_manager(agent: str) -> str:
    """The field manager the real server derives from a User-Agent: its first product token."""
    return (agent or "unknown").split("/")[0] or "unknown"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-contract/1"
    contract: ContractServer  # set on the subclass made per server

    # quiet: the request log is the record
    def log_message(self, format, *args):
        return

    def _send(self, code: int, body: dict | str, content_type: str = JSON) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> tuple[bytes, object]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return raw, None
        try:
            return raw, json.loads(raw)
        except ValueError:
            return raw, raw.decode("utf-8", "replace")

    def _authorised(self) -> bool:
        token = self.contract.token
        if not token:
            return True
        return self.headers.get("Authorization", "") == f"Bearer {token}"

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        raw, body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else (b"", None)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if url.path.startswith("/_contract/"):
            self._contract_route(url.path)
            return
        started = time.time()
        try:
            if not self._authorised():
                raise ApiError(401, "Unauthorized", "Unauthorized", {})
            code, answer = self._route(method, url.path.rstrip("/") or "/", query, content_type, raw, body)
        except ApiError as error:
            code, answer = error.code, error.status()
        except Exception as error:  # a bug here must still answer like an API server
            code, answer = 500, ApiError(500, f"internal error: {error!r}", "InternalError").status()
        self.contract.log.append(
            {
                "time": round(started, 3),
                "method": method,
                "path": url.path,
                "query": {k: v[-1] if len(v) == 1 else v for k, v in query.items()},
                "content_type": content_type or None,
                "user_agent": self.headers.get("User-Agent"),
                "status": code,
                "body": body,
            }
        )
        self._send(code, answer)

    def _contract_route(self, path: str) -> None:
        if path == "/_contract/objects":
            self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": self.contract.store.dump()})
        elif path == "/_contract/requests":
            with self.contract.log.lock:
                self._send(200, list(self.contract.log.entries))
        else:
            self._send(404, errors.path_not_found().status())

    # routing -----------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict, content_type: str, raw: bytes, body):
        discovery = self._discovery(path)
        if discovery is not None:
            if method != "GET":
                raise errors.method_not_allowed(method, path)
            return discovery
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        namespace, name, subresource = None, None, None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and group == ""
            and rest[2] in ("status", "finalize")
            and len(rest) == 3
        ):
            plural, name, subresource = "namespaces", rest[1], rest[2]
        elif rest[0] == "namespaces" and len(rest) >= 3:
            namespace, plural, tail = rest[1], rest[2], rest[3:]
            name = tail[0] if tail else None
            subresource = tail[1] if len(tail) > 1 else None
            if len(tail) > 2:
                raise errors.path_not_found()
        else:
            plural, tail = rest[0], rest[1:]
            name = tail[0] if tail else None
            subresource = tail[1] if len(tail) > 1 else None
            if len(tail) > 2:
                raise errors.path_not_found()
        resource = catalog.by_path(group, version, plural)
        if resource is None or (namespace is not None and not resource.namespaced):
            raise errors.path_not_found()
        if subresource and (subresource != "status" or not resource.status_subresource):
            raise errors.path_not_found()
        # Without a namespace, a namespaced resource only offers list and deletecollection.
        if resource.namespaced and namespace is None and name is not None:
            raise errors.path_not_found()
        if resource.namespaced and namespace is None and method not in ("GET", "DELETE"):
            raise errors.path_not_found()
        return self._resource_request(resource, method, namespace or "", name, subresource, query, content_type, body)

    def _discovery(self, path: str):
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        if path == "/version":
            return 200, catalog.version_info(self.contract.kubernetes_version)
        if path == "/api":
            return 200, catalog.api_versions(f"{self.contract.host}:{self.contract.port}")
        if path == "/api/v1":
            return 200, catalog.api_resource_list("", "v1")
        if path == "/apis":
            return 200, catalog.api_group_list()
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            if parts[1] not in catalog.groups():
                raise errors.path_not_found()
            return 200, catalog.api_group(parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            listing = catalog.api_resource_list(parts[1], parts[2])
            if listing is None:
                raise errors.path_not_found()
            return 200, listing
        return None

    def _resource_request(self, resource, method, namespace, name, subresource, query, content_type, body):
        store = self.contract.store
        dry_run = "All" in query.get("dryRun", [])
        manager = query.get("fieldManager", [None])[-1]
        if _flag(query, "watch"):
            raise errors.bad_request("watch is not supported by the kube_contract server")
        labels = query.get("labelSelector", [None])[-1]
        fields = query.get("fieldSelector", [None])[-1]
        if name is None:
            if method == "GET":
                return 200, store.list(resource, namespace or None, labels, fields)
            if method == "POST":
                self._require_json(content_type, body)
                agent = manager or _user_agent_manager(self.headers.get("User-Agent", ""))
                return 201, store.create(resource, namespace, body, agent, dry_run)
            if method == "DELETE":
                return 200, store.delete_collection(resource, namespace or None, labels, fields, dry_run)
            raise errors.method_not_allowed(method, f"the {resource.plural} collection")
        if method == "GET":
            return 200, store.get(resource, namespace, name)
        if method == "PUT":
            self._require_json(content_type, body)
            agent = manager or _user_agent_manager(self.headers.get("User-Agent", ""))
            return 200, store.replace(resource, namespace, name, body, agent, dry_run, subresource)
        if method == "PATCH":
            if content_type not in PATCH_TYPES:
                raise errors.unsupported_media_type(content_type, list(PATCH_TYPES))
            if not isinstance(body, dict):
                if content_type == "application/apply-patch+yaml" and isinstance(body, str):
                    raise errors.bad_request(
                        "this contract server reads apply patches as JSON (a YAML subset); "
                        "send the configuration as JSON"
                    )
                raise errors.bad_request("the body of the request must be a JSON object")
            if content_type != "application/apply-patch+yaml":
                manager = manager or _user_agent_manager(self.headers.get("User-Agent", ""))
            obj, created = store.patch(resource, namespace, name, body, content_type, manager, dry_run, subresource)
            return (201 if created else 200), obj
        if method == "DELETE":
            return 200, store.delete(resource, namespace, name, dry_run)
        raise errors.method_not_allowed(method, f"{resource.plural}/{name}")

    @staticmethod
    def _require_json(content_type: str, body) -> None:
        if content_type not in ("", JSON):
            raise errors.unsupported_media_type(content_type, [JSON])
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")


class ContractServer:
    """A running contract server: `url`, `store`, `log`; `start()` serves in a thread, `close()` stops."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        request_log=None,
        state_file=None,
        kubernetes_version: str = "v1.36.3",
        tls_cert=None,
        tls_key=None,
        client_ca=None,
        token: str | None = None,
    ) -> None:
        self.store = Store(state_file)
        self.log = RequestLog(request_log)
        self.kubernetes_version = kubernetes_version
        self.token = token
        handler = type("BoundHandler", (Handler,), {"contract": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert, tls_key)
            if client_ca:
                context.load_verify_locations(cafile=client_ca)
                context.verify_mode = ssl.CERT_REQUIRED
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.host, self.port = self.httpd.server_address[:2]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> ContractServer:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-contract", daemon=True
        )
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread:
            self.thread.join(timeout=5)
