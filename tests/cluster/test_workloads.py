"""Workloads on the real one-node cluster, brought up once for this module.

A pod and an Indexed Job run to Complete on a locally built image; a StatefulSet answers
through its pod IPs, a ClusterIP and a NodePort from the host; manifests go through the real
API server's dry run; FUSE works in a pod given the device by the project's device plugin,
and does not with a hostPath device; a Docker container reaches the API server."""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from cluster_verify import Kube

from primage import checks, cluster, pieces, workloads
from primage.checks.registry import checks_for
from primage.cluster import components

pytestmark = pytest.mark.cluster
# Not jupyter's default 30888: the workload cases' dry runs would find it allocated by this Service.
WEB_NODE_PORT = 30889


@pytest.fixture(scope="module")
def kube(built, test_image):
    cluster.up(images=[test_image])
    try:
        yield Kube(cluster.Layout())
    finally:
        cluster.down()


def _pod(name: str, image: str, command: list[str], **spec) -> dict:
    container = {"name": "main", "image": image, "imagePullPolicy": "Never", "command": command}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def test_the_node_is_ready_with_the_pinned_version(kube):
    node = kube.get("node", cluster.Settings().node_name, "")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{components.pins().kubernetes_version}"
    containerd = components.pins().module("containerd").version.removeprefix("v")
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == f"containerd://{containerd}"
    server = json.loads(kube.run("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert server == f"v{components.pins().kubernetes_version}"


def test_the_admin_kubeconfig_is_private_and_anonymous_requests_are_refused(kube):
    assert stat.S_IMODE(os.stat(kube.layout.admin_kubeconfig).st_mode) == 0o600
    context = ssl.create_default_context(cafile=str(kube.layout.pki / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{cluster.Settings().api_url}/api/v1/namespaces", context=context, timeout=10)  # noqa: S310
    assert refused.value.code == 401


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz"])
def test_only_the_health_endpoints_answer_anonymous_requests(kube, path):
    """The role's authentication configuration: what kubeadm's probes of the API server need."""
    context = ssl.create_default_context(cafile=str(kube.layout.pki / "ca.crt"))
    with urllib.request.urlopen(f"{cluster.Settings().api_url}{path}", context=context, timeout=10) as answer:  # noqa: S310
        assert answer.status == 200
    for other in ("/version", "/metrics", "/openapi/v2", f"{path}/etcd"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{cluster.Settings().api_url}{other}", context=context, timeout=10)  # noqa: S310
        assert refused.value.code == 401, other


# Every port a cluster process listens on beyond loopback, and the request that must be refused
# there without credentials: a new listener fails the walk until it is added here, proved closed.
EXPOSED = {
    ("kube-apiserver", 6443): "/api/v1/namespaces",  # 401: client certificates or tokens only
    ("kubelet", 10250): "/pods",  # 401: the API server's client certificate or a token it reviews
    ("etcd", 2380): None,  # the peer port: the TLS handshake itself demands an etcd client certificate
}


def _listeners(layout) -> set[tuple[str, str, int]]:
    """(component, address, port) of every TCP listener of the processes the cluster recorded."""
    recorded = json.loads(layout.state_file.read_text())["processes"]
    components_by_pid = {str(p["pid"]): p["name"] for p in recorded}
    listed = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in listed.splitlines():
        fields = line.split()
        address, _colon, port = fields[3].rpartition(":")
        for pid in re.findall(r"pid=(\d+)", fields[-1]):
            if pid in components_by_pid:
                found.add((components_by_pid[pid], address.strip("[]"), int(port)))
    return found


def _raw(address: str, port: int, request: bytes, tls: bool) -> bytes:
    import socket

    with socket.create_connection((address, port), timeout=10) as plain:
        if not tls:
            plain.sendall(request)
            return plain.recv(4096)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # no credentials at all: the refusal is what is tested
        with context.wrap_socket(plain) as secured:
            secured.sendall(request)
            return secured.recv(4096)


def test_every_port_beyond_loopback_refuses_plain_http_and_requests_without_credentials(kube):
    """The walk of the endpoints the test cluster exposes: only the listed ports leave loopback;
    each answers plain HTTP with no content and refuses an anonymous TLS request."""
    listeners = _listeners(kube.layout)
    assert len({p for p, _a, _port in listeners}) >= 5, f"the walk sees the cluster's components: {listeners}"
    outside = {(process, port): address for process, address, port in listeners if not address.startswith("127.")}
    assert set(outside) == set(EXPOSED), f"listeners beyond loopback: {sorted(outside.items())}"
    for (process, port), path in EXPOSED.items():
        address = outside[(process, port)]
        assert address == cluster.Settings().node_ip, f"{process}:{port} listens on {address}, not the node's bridge"
        plain = _raw(address, port, b"GET / HTTP/1.0\r\n\r\n", tls=False)
        assert plain in (b"", b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"), (
            process,
            plain[:200],
        )
        if path is None:
            with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_REQUIRED|certificate required"):
                _raw(address, port, b"GET /members HTTP/1.0\r\n\r\n", tls=True)
            continue
        answer = _raw(address, port, f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode(), tls=True)
        assert answer.startswith(b"HTTP/1.0 401 Unauthorized"), (process, answer[:200])


def test_a_pod_runs_to_completion_on_the_local_image(kube, test_image):
    kube.apply(_pod("hello", test_image, ["python3", "-c", "print('hello from', open('/etc/os-release').read())"]))
    assert kube.wait_pod_done("hello") == "Succeeded"
    assert "Debian GNU/Linux 13" in kube.logs("hello")


def test_an_indexed_job_runs_every_task_to_complete(kube, test_image):
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "indexed"},
        "spec": {
            "completionMode": "Indexed",
            "completions": 4,
            "parallelism": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "task",
                            "image": test_image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", 'echo "task $JOB_COMPLETION_INDEX done"'],
                        }
                    ],
                }
            },
        },
    }
    kube.apply(job)
    complete = 'jsonpath={.status.conditions[?(@.type=="Complete")].status}'
    kube.wait_for(
        "the Indexed Job to complete",
        lambda: kube.run("get", "job", "indexed", "-o", complete).stdout == "True",
        diagnose=("describe", "job", "indexed"),
    )
    logs = kube.run("logs", "-l", "job-name=indexed", "--tail=-1").stdout.split("\n")
    assert sorted(line for line in logs if line) == [f"task {i} done" for i in range(4)]


def _statefulset(image: str) -> list[dict]:
    labels = {"app": "web"}
    port = {"name": "http", "port": 80, "targetPort": 8080}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-headless"},
            "spec": {"clusterIP": "None", "selector": labels, "ports": [port]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": labels, "ports": [port]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-nodeport"},
            "spec": {"type": "NodePort", "selector": labels, "ports": [{**port, "nodePort": WEB_NODE_PORT}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "serviceName": "web-headless",
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                            }
                        ]
                    },
                },
            },
        },
    ]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (http to the test cluster)
        return response.read().decode().strip()


@pytest.fixture(scope="module")
def web(kube, test_image):
    """The StatefulSet and its Services, Ready."""
    kube.apply(*_statefulset(test_image))
    ready = "jsonpath={.status.readyReplicas}"
    kube.wait_for(
        "the StatefulSet's two pods",
        lambda: kube.run("get", "statefulset", "web", "-o", ready).stdout == "2",
        diagnose=("describe", "pods", "-l", "app=web"),
    )
    # Ready pods reach kube-proxy's rules through the EndpointSlice a moment later.
    cluster_ip = kube.get("service", "web")["spec"]["clusterIP"]
    kube.wait_for("kube-proxy to route the Service", lambda: _answers(f"http://{cluster_ip}/"), timeout=30)
    return kube


def _answers(url: str) -> bool:
    try:
        return bool(_get(url))
    except OSError:
        return False


def test_a_statefulset_answers_by_pod_ip_cluster_ip_and_node_port(web):
    kube = web
    for name in ("web-0", "web-1"):
        ip = kube.get("pod", name)["status"]["podIP"]
        assert _get(f"http://{ip}:8080/") == name
    cluster_ip = kube.get("service", "web")["spec"]["clusterIP"]
    # The Service's endpoints may trail the pods' readiness by a sync of the endpoint
    # controller and kube-proxy: ask until both replicas have answered, within a deadline.
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while seen != {"web-0", "web-1"} and time.monotonic() < deadline:
        seen.add(_get(f"http://{cluster_ip}/"))
    assert seen == {"web-0", "web-1"}
    node_ip = cluster.Settings().node_ip
    assert _get(f"http://{node_ip}:{WEB_NODE_PORT}/") in {"web-0", "web-1"}


def test_a_pod_reaches_a_service_through_its_cluster_ip(web, test_image):
    """Pod to ClusterIP crosses the CNI bridge, br_netfilter and the FORWARD chain."""
    kube = web
    cluster_ip = kube.get("service", "web")["spec"]["clusterIP"]
    probe = f"import urllib.request; print(urllib.request.urlopen('http://{cluster_ip}/', timeout=5).read().decode())"
    kube.apply(_pod("client", test_image, ["python3", "-c", probe]))
    assert kube.wait_pod_done("client") == "Succeeded", kube.logs("client")
    assert kube.logs("client").strip() in {"web-0", "web-1"}


# --------------------------------------------------------------------------- server-side dry run


def _configmap(name: str, namespace: str, **extra) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
        **extra,
    }


def test_dry_run_accepts_valid_objects_and_stores_nothing(kube):
    namespace = f"dry-{uuid.uuid4().hex[:6]}"
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        _configmap("settings", namespace),
    ]
    assert cluster.dry_run(manifests) == []
    assert kube.run("get", "configmap", "settings", "-n", namespace, check=False).returncode != 0
    phase = kube.run("get", "namespace", namespace, "-o", "jsonpath={.status.phase}", check=False).stdout
    assert phase in ("", "Terminating")  # the scratch namespace is going away


def test_dry_run_accepts_an_object_another_manager_has_deployed(kube):
    """A role's deployed application (its own field manager) does not make the check of its case fail."""
    namespace = f"owned-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    try:
        deployed = _configmap("settings", namespace)
        kube.run("apply", "--server-side", "--field-manager=primage-platform", "-f", "-", stdin=json.dumps(deployed))
        changed = _configmap("settings", namespace)
        changed["data"] = {"k": "another value"}  # a field the role owns: a conflict without forcing
        assert cluster.dry_run([changed]) == []
        assert kube.get("configmap", "settings", namespace)["data"] == deployed["data"]  # nothing stored
    finally:
        kube.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_dry_run_reports_what_the_api_server_refuses(kube, tmp_path):
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\ndata: {a: b}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\n"
        "spec: {replicas: -1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}},"
        " spec: {containers: [{name: c, image: x:1, imagePullPolicy: Sometimes}]}}}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: typo}\nspec: {prots: [{port: 80}]}\n"
    )
    problems = cluster.dry_run([manifest])
    assert [p.field for p in problems] == ["document 2: Deployment/bad", "document 3: Service/typo"]
    assert all(p.file.endswith("app.yaml") for p in problems)
    assert "spec.replicas" in problems[0].message
    assert "Sometimes" in problems[0].message
    assert ".spec.prots: field not declared in schema" in problems[1].message


# --------------------------------------------------------------------------- the workload cases, dry-run


CASES = [p for p in pieces.discover() if p.kind == "workload-case"]


@pytest.mark.parametrize("piece", CASES, ids=lambda p: p.name)
def test_every_workload_case_passes_every_check_with_the_dry_run(kube, piece):
    """The check `primage check` runs when a cluster is up: every rendered manifest through the real API server."""
    report = checks.run_checks(piece, checks_for(piece.kind))
    assert [f"{r.check}: {p}" for r in report.results for p in r.problems] == []
    assert {r.check: r.status for r in report.results if r.status != checks.PASS} == {}
    assert "dry-run" in {r.check for r in report.results}


def test_the_dry_run_check_finds_what_only_the_api_server_refuses(kube, primage, tmp_path):
    """A negative retry count: the schemas have no minimum, so kubernetes-validate and checkov pass it."""
    case = tmp_path / "negative-retries.yml"
    case.write_text(
        "---\nvalues:\n  htc_batch_image: registry.primage.example:5000/primage/segmentation:0.1.0-1a2b3c4\n"
        "  htc_batch_backoff_limit_per_index: -1\n  htc_batch_inputs: [inputs/a.nii.gz]\n"
    )
    run = primage("check", case, "--json")
    assert run.code == 1, run.out
    (piece,) = run.json()["pieces"]
    results = {r["check"]: r for r in piece["results"]}
    assert results["kubernetes-validate"]["status"] == "pass"
    assert results["dry-run"]["status"] == "FAIL"
    (problem,) = results["dry-run"]["problems"]
    assert problem["field"].startswith("job-htc-batch-")
    assert "spec.backoffLimitPerIndex: Invalid value: -1" in problem["message"]


def test_the_api_server_forbids_no_privilege_escalation_only_beside_the_cap_sys_admin_spelling(kube):
    """Pod mode sets allowPrivilegeEscalation false beside SYS_ADMIN, which the real server (1.36)
    accepts; it refuses only the capability spelled CAP_SYS_ADMIN (the former API fake refused both)."""
    case = workloads.load_case(next(p.path for p in CASES if p.name == "htc_batch-pod-mode"))
    (job,) = [m.definition for m in case.render().manifests if m.kind == "Job"]
    context = job["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert "SYS_ADMIN" in context["capabilities"]["add"]
    assert cluster.dry_run([job]) == []
    added = context["capabilities"]["add"]
    context["capabilities"]["add"] = ["CAP_SYS_ADMIN" if c == "SYS_ADMIN" else c for c in added]
    (problem,) = cluster.dry_run([job])
    assert "allowPrivilegeEscalation" in problem.message
    assert "CAP_SYS_ADMIN" in problem.message


# --------------------------------------------------------------------------- FUSE in a pod


FUSE_SCRIPT = (
    "mkdir -p /src /mnt/view && echo data > /src/file && bindfs /src /mnt/view && cat /mnt/view/file && "
    "grep -q ' /mnt/view fuse' /proc/mounts && fusermount3 -u /mnt/view && echo unmounted"
)


def _fuse_pod(name: str, image: str, device_plugin: bool) -> dict:
    container = {
        "securityContext": {"runAsUser": 0, "privileged": False, "capabilities": {"add": ["SYS_ADMIN"]}},
    }
    spec: dict = {}
    if device_plugin:
        container["resources"] = {"limits": {cluster.fuse_resource_name(): 1}}
    else:
        container["volumeMounts"] = [{"name": "fuse", "mountPath": "/dev/fuse"}]
        spec["volumes"] = [{"name": "fuse", "hostPath": {"path": "/dev/fuse", "type": "CharDevice"}}]
    return _pod(name, image, ["sh", "-c", FUSE_SCRIPT], container=container, **spec)


def test_fuse_mounts_in_a_pod_given_the_device_by_the_plugin(kube, test_image):
    kube.apply(_fuse_pod("fuse-plugin", test_image, device_plugin=True))
    assert kube.wait_pod_done("fuse-plugin") == "Succeeded", kube.logs("fuse-plugin")
    assert kube.logs("fuse-plugin").split() == ["data", "unmounted"]


def test_fuse_fails_with_a_host_path_device_the_cgroup_does_not_allow(kube, test_image):
    """Why the plugin exists: SYS_ADMIN plus a hostPath /dev/fuse is refused by the device cgroup."""
    kube.apply(_fuse_pod("fuse-hostpath", test_image, device_plugin=False))
    assert kube.wait_pod_done("fuse-hostpath") == "Failed"
    assert "Operation not permitted" in kube.logs("fuse-hostpath")


# --------------------------------------------------------------------------- access from containers, status


def test_a_docker_container_reaches_the_api_server_with_the_kubeconfig(kube, test_image):
    access = cluster.container_access()
    kubectl = components.binaries()["kubectl"]
    command = [
        "docker", "run", "--rm", "--name", f"primage-cluster-access-{uuid.uuid4().hex[:8]}",
        *access["docker_args"], "-v", f"{kubectl}:/usr/local/bin/kubectl:ro", "--user", "0", "--entrypoint", "kubectl",
        test_image, "get", "nodes", "-o", "name",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"node/{cluster.Settings().node_name}"


def test_a_docker_container_reaches_a_node_port(web, test_image):
    """What a Molecule verify step does against a Service: the NodePort on the node's bridge."""
    url = f"http://{cluster.Settings().node_ip}:{WEB_NODE_PORT}/"
    probe = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
    command = ["docker", "run", "--rm", "--name", f"primage-cluster-access-{uuid.uuid4().hex[:8]}", test_image,
               "python3", "-c", probe]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in {"web-0", "web-1"}


def test_molecule_runs_see_the_clusters_kubeconfig(kube):
    """molecule.yml files can mount ${PRIMAGE_CLUSTER_KUBECONFIG} into their instances."""
    from primage import molecule, roles

    scenario = roles.find("htc_batch").scenarios()[0]
    env = molecule.environment(molecule.Run("htc_batch", "debian:trixie", scenario))
    assert env["PRIMAGE_CLUSTER_KUBECONFIG"] == str(kube.layout.admin_kubeconfig)
    assert env["PRIMAGE_CLUSTER_SERVER"] == cluster.Settings().api_url


def test_status_lists_every_component_running(kube, primage):
    run = primage("cluster", "status", "--json")
    assert run.code == 0, run.err
    current = run.json()
    assert current["node_ready"] is True
    assert {p["name"] for p in current["processes"] if p["alive"]} == {
        "containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
    }  # fmt: skip


def test_loading_an_image_again_imports_nothing(kube, test_image):
    assert cluster.load_images([test_image]) == {test_image: "up to date"}


def test_the_roles_configuration_is_what_kubeadm_used(kube):
    """kubeadm validated the rendered role template and generated every certificate from it."""
    role_config = (kube.layout.kubeadm / "role-init.yaml").read_text()
    assert "kind: InitConfiguration" in role_config
    certificate = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(kube.layout.pki / "apiserver.crt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert cluster.Settings().node_ip in certificate
    assert "kubernetes.default.svc.cluster.local" in certificate
