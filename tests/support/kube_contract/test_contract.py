"""The contract server driven by the official kubernetes Python client (DynamicClient and typed API).

Each test starts its own server on an ephemeral port, so tests are independent.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError

from .server import ContractServer
from .store import Store

NS = "contract"
LABELS = {"app.kubernetes.io/name": "demo", "app.kubernetes.io/part-of": "primage"}

POD_SPEC = {
    "containers": [
        {
            "name": "worker",
            "image": "registry.example:5000/primage/demo:1.0.0",
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "demo", "key": "token"}}}],
            "volumeMounts": [{"name": "fuse", "mountPath": "/dev/fuse"}],
            "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
        }
    ],
    "volumes": [{"name": "fuse", "hostPath": {"path": "/dev/fuse", "type": "CharDevice"}}],
}

MANIFESTS = {
    "ConfigMap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "demo", "labels": LABELS},
        "data": {"inputs.txt": "a.nii.gz\nb.nii.gz\n"},
    },
    "Secret": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "demo", "labels": LABELS},
        "type": "Opaque",
        "data": {"token": "c2VjcmV0"},
    },
    "Service": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "demo", "labels": LABELS},
        "spec": {
            "type": "NodePort",
            "selector": LABELS,
            "ports": [{"name": "http", "port": 8888, "targetPort": 8888}],
        },
    },
    "Job": {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "demo", "labels": LABELS},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "backoffLimitPerIndex": 1,
            "template": {"metadata": {"labels": LABELS}, "spec": {**POD_SPEC, "restartPolicy": "Never"}},
        },
    },
    "StatefulSet": {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "demo", "labels": LABELS},
        "spec": {
            "replicas": 1,
            "serviceName": "demo",
            "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": POD_SPEC},
        },
    },
}


@pytest.fixture
def server(tmp_path):
    srv = ContractServer(request_log=tmp_path / "requests.jsonl", state_file=tmp_path / "objects.json").start()
    yield srv
    srv.close()


def _api_client(url: str, **settings) -> k8s.ApiClient:
    configuration = k8s.Configuration(host=url)
    for key, value in settings.items():
        setattr(configuration, key, value)
    return k8s.ApiClient(configuration)


@pytest.fixture
def dyn(server, tmp_path):
    return DynamicClient(_api_client(server.url), cache_file=str(tmp_path / "discovery.json"))


@pytest.fixture
def namespace(dyn):
    dyn.resources.get(api_version="v1", kind="Namespace").create(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": LABELS}}
    )
    return NS


def _resource(dyn, kind):
    manifest = MANIFESTS.get(kind, {"apiVersion": "v1"})
    return dyn.resources.get(api_version=manifest["apiVersion"], kind=kind)


def _status(exc: ApiException) -> dict:
    return json.loads(exc.body)


# --- discovery ----------------------------------------------------------------------------------


def test_version_reports_kubernetes_1_36(dyn):
    assert dyn.version["kubernetes"]["gitVersion"] == "v1.36.3"
    assert dyn.version["kubernetes"]["minor"] == "36"


@pytest.mark.parametrize(
    ("api_version", "kind", "plural", "namespaced", "short"),
    [
        ("v1", "Namespace", "namespaces", False, ["ns"]),
        ("v1", "Secret", "secrets", True, None),
        ("v1", "ConfigMap", "configmaps", True, ["cm"]),
        ("v1", "Service", "services", True, ["svc"]),
        ("batch/v1", "Job", "jobs", True, None),
        ("apps/v1", "StatefulSet", "statefulsets", True, ["sts"]),
    ],
)
def test_discovery_describes_each_kind(dyn, api_version, kind, plural, namespaced, short):
    resource = dyn.resources.get(api_version=api_version, kind=kind)
    assert resource.name == plural
    assert resource.namespaced is namespaced
    assert {"create", "get", "list", "patch", "update", "delete"} <= set(resource.verbs)
    assert resource.short_names == short or (short is None and not resource.short_names)
    if short:
        assert dyn.resources.get(short_names=short).kind == kind


def test_discovery_documents_have_the_api_shapes(server):
    def get(path):
        with urllib.request.urlopen(server.url + path) as answer:  # noqa: S310 - http test URL
            return json.load(answer)

    core = get("/api/v1")
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    assert "apiVersion" not in core
    batch = get("/apis/batch/v1")
    assert batch["apiVersion"] == "v1"
    assert batch["groupVersion"] == "batch/v1"
    jobs = {r["name"]: r for r in batch["resources"]}
    assert jobs["jobs"]["kind"] == "Job"
    assert jobs["jobs/status"]["verbs"] == ["get", "patch", "update"]
    assert all({"name", "singularName", "namespaced", "kind", "verbs"} <= set(r) for r in core["resources"])
    groups = get("/apis")
    assert groups["kind"] == "APIGroupList"
    assert {g["name"]: g["preferredVersion"]["groupVersion"] for g in groups["groups"]} == {
        "apps": "apps/v1",
        "batch": "batch/v1",
    }
    assert get("/api")["versions"] == ["v1"]
    assert get("/apis/apps")["kind"] == "APIGroup"


# --- CRUD for each kind ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_create_get_list_patch_delete(dyn, namespace, kind):
    resource = _resource(dyn, kind)
    created = resource.create(body=copy.deepcopy(MANIFESTS[kind]), namespace=namespace)
    meta = created.metadata
    assert meta.name == "demo"
    assert meta.namespace == namespace
    assert meta.uid
    assert meta.resourceVersion
    assert meta.creationTimestamp.endswith("Z")

    fetched = resource.get(name="demo", namespace=namespace)
    assert fetched.metadata.uid == meta.uid
    assert fetched.kind == kind

    listed = resource.get(namespace=namespace, label_selector="app.kubernetes.io/name=demo")
    assert listed.kind == f"{kind}List"
    assert [i.metadata.name for i in listed.items] == ["demo"]
    assert resource.get(namespace=namespace, label_selector="app.kubernetes.io/name!=demo").items == []
    assert [i.metadata.name for i in resource.get().items] == ["demo"]  # across namespaces

    merged = resource.patch(
        name="demo",
        namespace=namespace,
        body={"metadata": {"labels": {"tier": "test"}}},
        content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels["tier"] == "test"
    assert int(merged.metadata.resourceVersion) > int(meta.resourceVersion)

    strategic = resource.patch(name="demo", namespace=namespace, body={"metadata": {"labels": {"tier": None}}})
    assert "tier" not in dict(strategic.metadata.labels)

    deleted = resource.delete(name="demo", namespace=namespace)
    assert deleted.metadata.name == "demo"
    with pytest.raises(NotFoundError) as missing:
        resource.get(name="demo", namespace=namespace)
    assert isinstance(missing.value, ApiException)
    assert missing.value.status == 404


def test_namespace_lifecycle(dyn):
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    created = namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "life"}})
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == "life"
    secrets = dyn.resources.get(api_version="v1", kind="Secret")
    secrets.create(body=copy.deepcopy(MANIFESTS["Secret"]), namespace="life")
    patched = namespaces.patch(
        name="life",
        body={"metadata": {"annotations": {"a": "b"}}},
        content_type="application/merge-patch+json",
    )
    assert patched.metadata.annotations["a"] == "b"
    gone = namespaces.delete(name="life")
    assert gone.status.phase == "Terminating"
    with pytest.raises(NotFoundError):
        secrets.get(name="demo", namespace="life")


# --- errors -------------------------------------------------------------------------------------


def test_404_is_a_not_found_status(dyn, namespace):
    with pytest.raises(ApiException) as error:
        _resource(dyn, "Job").get(name="absent", namespace=namespace)
    assert error.value.status == 404
    status = _status(error.value)
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["reason"] == "NotFound"
    assert status["message"] == 'jobs.batch "absent" not found'
    assert status["details"] == {"name": "absent", "group": "batch", "kind": "jobs"}


def test_create_in_missing_namespace_is_404(dyn):
    with pytest.raises(NotFoundError) as error:
        _resource(dyn, "Secret").create(body=copy.deepcopy(MANIFESTS["Secret"]), namespace="nowhere")
    assert _status(error.value)["message"] == 'namespaces "nowhere" not found'


def test_409_already_exists(dyn, namespace):
    secrets = _resource(dyn, "Secret")
    secrets.create(body=copy.deepcopy(MANIFESTS["Secret"]), namespace=namespace)
    with pytest.raises(ApiException) as error:
        secrets.create(body=copy.deepcopy(MANIFESTS["Secret"]), namespace=namespace)
    assert isinstance(error.value, ConflictError)
    assert error.value.status == 409
    status = _status(error.value)
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'secrets "demo" already exists'


def test_409_conflict_on_stale_resource_version(dyn, namespace):
    maps = _resource(dyn, "ConfigMap")
    first = maps.create(body=copy.deepcopy(MANIFESTS["ConfigMap"]), namespace=namespace).to_dict()
    maps.patch(
        name="demo",
        namespace=namespace,
        body={"data": {"x": "1"}},
        content_type="application/merge-patch+json",
    )
    first["data"] = {"y": "2"}
    with pytest.raises(ConflictError) as error:
        maps.replace(body=first, namespace=namespace)
    assert error.value.status == 409
    assert _status(error.value)["reason"] == "Conflict"
    fresh = maps.get(name="demo", namespace=namespace).to_dict()
    fresh["data"] = {"y": "2"}
    assert maps.replace(body=fresh, namespace=namespace).data.to_dict() == {"y": "2"}


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("Secret", lambda m: m["metadata"].update(name="Not_Valid"), "metadata.name"),
        (
            "Job",
            lambda m: m["spec"]["template"]["spec"].update(restartPolicy="Always"),
            "spec.template.spec.restartPolicy",
        ),
        ("Job", lambda m: m["spec"].pop("completions"), "spec.completions"),
        (
            "StatefulSet",
            lambda m: m["spec"]["selector"].update(matchLabels={"other": "x"}),
            "spec.template.metadata.labels",
        ),
        ("Service", lambda m: m["spec"]["ports"][0].update(nodePort=80), "spec.ports[0].nodePort"),
        ("ConfigMap", lambda m: m["data"].update({"bad key": "x"}), "data"),
        (
            "Job",
            lambda m: m["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].append(
                {"name": "missing", "mountPath": "/x"}
            ),
            "spec.template.spec.containers[0].volumeMounts[1].name",
        ),
    ],
)
def test_422_invalid(dyn, namespace, kind, change, field):
    manifest = copy.deepcopy(MANIFESTS[kind])
    change(manifest)
    with pytest.raises(UnprocessibleEntityError) as error:
        _resource(dyn, kind).create(body=manifest, namespace=namespace)
    status = _status(error.value)
    assert error.value.status == 422
    assert status["reason"] == "Invalid"
    assert field in [cause["field"] for cause in status["details"]["causes"]]


def test_job_template_is_immutable(dyn, namespace):
    jobs = _resource(dyn, "Job")
    jobs.create(body=copy.deepcopy(MANIFESTS["Job"]), namespace=namespace)
    changed = {"spec": {"template": {"spec": {"containers": [{"name": "worker", "image": "other:2"}]}}}}
    with pytest.raises(UnprocessibleEntityError) as error:
        jobs.patch(name="demo", namespace=namespace, body=changed)
    assert "spec.template: Invalid value" in _status(error.value)["message"]
    assert "field is immutable" in _status(error.value)["message"]
    parallel = jobs.patch(
        name="demo",
        namespace=namespace,
        body={"spec": {"parallelism": 1}},
        content_type="application/merge-patch+json",
    )
    assert parallel.spec.parallelism == 1
    assert parallel.metadata.generation == 2


def test_unknown_paths_and_watch(server):
    for path, code in (
        ("/apis/extensions/v1beta1", 404),
        ("/api/v1/pods", 404),
        ("/api/v1/namespaces?watch=true", 400),
    ):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url + path)  # noqa: S310 - http test URL
        assert error.value.code == code
        assert json.load(error.value)["kind"] == "Status"


# --- server-side apply, defaults and secrets -------------------------------------------------------


def test_server_side_apply_is_idempotent_and_prunes(dyn, namespace):
    maps = _resource(dyn, "ConfigMap")
    config = copy.deepcopy(MANIFESTS["ConfigMap"])
    config["metadata"]["namespace"] = namespace
    created = maps.server_side_apply(body=config, field_manager="primage-platform", force_conflicts=True)
    again = maps.server_side_apply(body=config, field_manager="primage-platform", force_conflicts=True)
    assert again.metadata.resourceVersion == created.metadata.resourceVersion
    assert [(m.manager, m.operation) for m in again.metadata.managedFields] == [("primage-platform", "Apply")]
    maps.patch(
        name="demo",
        namespace=namespace,
        body={"data": {"other": "kept"}},
        content_type="application/merge-patch+json",
        field_manager="someone-else",
    )
    config["data"] = {"new.txt": "x"}
    pruned = maps.server_side_apply(body=config, field_manager="primage-platform")
    assert pruned.data.to_dict() == {"other": "kept", "new.txt": "x"}
    with pytest.raises(UnprocessibleEntityError):
        dyn.request(
            "patch",
            f"/api/v1/namespaces/{namespace}/configmaps/demo",
            body=config,
            content_type="application/apply-patch+yaml",
        )


def test_apply_keeps_server_allocations(dyn, namespace):
    services = _resource(dyn, "Service")
    config = copy.deepcopy(MANIFESTS["Service"])
    config["metadata"]["namespace"] = namespace
    first = services.server_side_apply(body=config, field_manager="primage-platform")
    port = first.spec.ports[0].nodePort
    assert 30000 <= port <= 32767
    assert first.spec.clusterIP.startswith("10.")
    second = services.server_side_apply(body=config, field_manager="primage-platform")
    assert second.spec.ports[0].nodePort == port
    assert second.metadata.resourceVersion == first.metadata.resourceVersion
    clash = copy.deepcopy(config)
    clash["metadata"]["name"] = "clash"
    clash["spec"]["ports"][0]["nodePort"] = port
    with pytest.raises(UnprocessibleEntityError) as error:
        services.create(body=clash, namespace=namespace)
    assert "provided port is already allocated" in _status(error.value)["message"]


def test_defaults_of_job_and_statefulset(dyn, namespace):
    job = _resource(dyn, "Job").create(body=copy.deepcopy(MANIFESTS["Job"]), namespace=namespace)
    assert job.spec.backoffLimit == 2**31 - 1
    assert job.spec.suspend is False
    assert job.spec.selector.matchLabels["batch.kubernetes.io/controller-uid"] == job.metadata.uid
    assert job.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "demo"
    assert job.spec.template.spec.containers[0].imagePullPolicy == "IfNotPresent"
    assert job.metadata.generation == 1
    sts = _resource(dyn, "StatefulSet").create(body=copy.deepcopy(MANIFESTS["StatefulSet"]), namespace=namespace)
    assert sts.spec.template.spec.restartPolicy == "Always"
    assert sts.spec.updateStrategy.rollingUpdate.partition == 0


def test_secret_string_data_is_stored_base64(dyn, namespace):
    body = copy.deepcopy(MANIFESTS["Secret"])
    body.pop("data")
    body["stringData"] = {"token": "plain"}
    secret = _resource(dyn, "Secret").create(body=body, namespace=namespace)
    assert secret.data.token == "cGxhaW4="  # noqa: S105 - test value
    assert "stringData" not in secret.to_dict()
    bad = copy.deepcopy(MANIFESTS["Secret"])
    bad["metadata"]["name"] = "bad"
    bad["data"] = {"token": "not base64!"}
    with pytest.raises(UnprocessibleEntityError):
        _resource(dyn, "Secret").create(body=bad, namespace=namespace)


def test_dry_run_stores_nothing(dyn, namespace):
    maps = _resource(dyn, "ConfigMap")
    maps.create(body=copy.deepcopy(MANIFESTS["ConfigMap"]), namespace=namespace, dry_run="All")
    with pytest.raises(NotFoundError):
        maps.get(name="demo", namespace=namespace)


# --- request log, dumps, typed client, schema ------------------------------------------------------


def test_request_log_records_every_request(dyn, namespace, server, tmp_path):
    secrets = _resource(dyn, "Secret")
    secrets.create(body=copy.deepcopy(MANIFESTS["Secret"]), namespace=namespace)
    urllib.request.urlopen(server.url + "/_contract/objects").read()  # noqa: S310 - http test URL
    log = tmp_path / "requests.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    posts = [e for e in entries if e["method"] == "POST" and e["path"].endswith("/secrets")]
    assert len(posts) == 1
    assert posts[0]["content_type"] == "application/json"
    assert posts[0]["status"] == 201
    assert posts[0]["body"]["data"] == {"token": "c2VjcmV0"}
    assert any(e["path"] == "/version" for e in entries)
    assert not any(e["path"].startswith("/_contract") for e in entries)


def test_state_file_survives_a_restart(dyn, namespace, tmp_path):
    _resource(dyn, "ConfigMap").create(body=copy.deepcopy(MANIFESTS["ConfigMap"]), namespace=namespace)
    state = tmp_path / "objects.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    reloaded = Store(state)
    kinds = [o["kind"] for o in reloaded.dump()]
    assert kinds == ["ConfigMap", "Namespace"]


def test_typed_client_reads_the_same_objects(server, dyn, namespace):
    _resource(dyn, "ConfigMap").create(body=copy.deepcopy(MANIFESTS["ConfigMap"]), namespace=namespace)
    core = k8s.CoreV1Api(_api_client(server.url))
    assert core.read_namespaced_config_map("demo", namespace).data["inputs.txt"].startswith("a.nii.gz")
    with pytest.raises(ApiException) as error:
        core.read_namespaced_secret("absent", namespace)
    assert error.value.status == 404


def test_stored_objects_pass_strict_schema_validation_for_1_36(dyn, namespace, server):
    for kind in sorted(MANIFESTS):
        _resource(dyn, kind).create(body=copy.deepcopy(MANIFESTS[kind]), namespace=namespace)
    objects = server.store.dump()
    assert len(objects) == len(MANIFESTS) + 1
    for obj in objects:
        kubernetes_validate.validate(obj, "1.36.0", strict=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_with_client_certificates(tmp_path):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    leaf = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "authorityKeyIdentifier=keyid",
    ]
    (tmp_path / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\n"
    )
    (tmp_path / "server.ext").write_text("\n".join([*leaf, "subjectAltName=IP:127.0.0.1"]) + "\n")
    (tmp_path / "admin.ext").write_text("\n".join([*leaf, "extendedKeyUsage=clientAuth"]) + "\n")
    # Extensions as kubeadm sets them: Python 3.13 verifies certificates strictly.
    run(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-subj",
        "/CN=kube-contract-ca",
        "-out",
        "ca.csr",
    )
    run("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-days", "1", "-extfile", "ca.ext", "-out", "ca.crt")
    for name, subject in (("server", "/CN=kube-apiserver"), ("admin", "/O=system:masters/CN=kubernetes-admin")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext",
        )  # fmt: skip
    srv = ContractServer(
        tls_cert=str(tmp_path / "server.crt"),
        tls_key=str(tmp_path / "server.key"),
        client_ca=str(tmp_path / "ca.crt"),
    ).start()
    try:
        secure = _api_client(
            srv.url,
            ssl_ca_cert=str(tmp_path / "ca.crt"),
            cert_file=str(tmp_path / "admin.crt"),
            key_file=str(tmp_path / "admin.key"),
        )
        dyn = DynamicClient(secure, cache_file=str(tmp_path / "tls-discovery.json"))
        assert dyn.version["kubernetes"]["gitVersion"] == "v1.36.3"
        anonymous = _api_client(srv.url, ssl_ca_cert=str(tmp_path / "ca.crt"))
        anonymous.configuration.retries = 0
        with pytest.raises(Exception):  # noqa: B017, PT011 - the TLS handshake fails below the API
            k8s.VersionApi(anonymous).get_code()
    finally:
        srv.close()


def test_command_line_serves_dumps_and_writes_kubeconfig(tmp_path):
    package_parent = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    config = subprocess.run(
        ["python3", "-m", "kube_contract", "kubeconfig", "--server", "http://127.0.0.1:1"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    assert json.loads(config.stdout)["clusters"][0]["cluster"]["server"] == "http://127.0.0.1:1"
    state = tmp_path / "objects.json"
    srv = ContractServer(state_file=state).start()
    try:
        _api_client(srv.url)
        DynamicClient(_api_client(srv.url), cache_file=str(tmp_path / "d.json")).resources.get(
            api_version="v1", kind="Namespace"
        ).create(body={"metadata": {"name": "cli"}})
    finally:
        srv.close()
    subprocess.run(
        [
            "python3",
            "-m",
            "kube_contract",
            "dump",
            "--state-file",
            str(state),
            "--out",
            str(tmp_path / "dump"),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    assert json.loads((tmp_path / "dump" / "namespace-cli.json").read_text())["metadata"]["name"] == "cli"


def test_scan_finds_secret_values_in_readable_files_only(dyn, namespace, server, tmp_path):
    from .scan import scan

    _resource(dyn, "Secret").create(body=copy.deepcopy(MANIFESTS["Secret"]), namespace=namespace)
    root = tmp_path / "root"
    root.mkdir()
    (root / "leak.txt").write_text("token=c2VjcmV0 and secret\n")
    (root / "leak.txt").chmod(0o644)
    (root / "private.txt").write_text("c2VjcmV0\n")
    (root / "private.txt").chmod(0o600)
    (root / "clean.txt").write_text("nothing here\n")
    (root / "clean.txt").chmod(0o644)
    report = scan(tmp_path / "objects.json", [str(root)])
    assert report["world_readable_files"] == [str(root / "leak.txt")]
    assert report["processes"] == []
