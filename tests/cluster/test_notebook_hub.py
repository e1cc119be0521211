"""The notebook hub on the real one-node cluster: EGI Check-in sign-in (the test provider on
loopback), a notebook pod per member spawned by KubeSpawner, nothing for anyone else.

The hub runs as a pod of the `jupyterhub` image with its service account allowed to manage pods
in its namespace; it shares the node's network so that it reaches the provider, which listens
on loopback only (a site's hub reaches Check-in on the internet instead). The member signs in
through the whole browser flow (HTTP requests), starts their server, and reaches their own
JupyterLab through the hub's HTTPS port; the notebook pod runs the jupyter image of this
revision as its user, with no service-account token and privilege escalation off. The outsider
is refused, a signed-out browser gets the sign-in page, and stopping the server removes the pod."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from cluster_verify import Kube

from primage import cluster, oidc, tls
from primage.im_server import free_port
from primage.oidc.provider import LocalProvider

pytestmark = pytest.mark.cluster

NAMESPACE = "primage-hub-test"
CLIENT_ID = "primage-notebooks"
APP_UID = 1000


@pytest.fixture(scope="module")
def images(built) -> dict[str, str]:
    from primage.commands import htc

    return {name: htc.ensure_application_image(name) for name in ("jupyterhub", "jupyter")}


@pytest.fixture(scope="module")
def kube(images):
    cluster.up(images=list(images.values()), fuse_plugin=False)
    try:
        yield Kube()
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LocalProvider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


def secret(name: str, files: dict[str, bytes], kind: str = "Opaque") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "type": kind,
        "data": {key: base64.b64encode(value).decode() for key, value in files.items()},
    }


def hub_objects(image: str, notebook_image: str, env: dict[str, str]) -> list[dict]:
    """What a site applies for the hub: its account and rights, its Secrets, its pod."""
    meta = {"namespace": NAMESPACE}
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "create", "delete"]},
    ]
    container = {
        "name": "hub",
        "image": image,
        "imagePullPolicy": "Never",
        "env": [
            {"name": key, "value": value}
            for key, value in {**env, "PRIMAGE_HUB_NOTEBOOK_IMAGE": notebook_image}.items()
        ],
        "volumeMounts": [
            {"name": "tls", "mountPath": "/etc/primage/hub-tls", "readOnly": True},
            {"name": "client", "mountPath": "/var/run/secrets/primage-hub", "readOnly": True},
            {"name": "oidc-ca", "mountPath": "/etc/primage/oidc-ca", "readOnly": True},
            {"name": "data", "mountPath": "/srv/jupyterhub"},
        ],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "primage-hub", **meta}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "primage-hub", **meta},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "primage-hub", **meta},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "primage-hub"},
            "subjects": [{"kind": "ServiceAccount", "name": "primage-hub", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "primage-hub", **meta, "labels": {"app": "primage-hub"}},
            "spec": {
                "serviceAccountName": "primage-hub",
                "hostNetwork": True,
                "securityContext": {"runAsUser": APP_UID, "runAsGroup": APP_UID, "fsGroup": APP_UID},
                "containers": [container],
                "volumes": [
                    {"name": "tls", "secret": {"secretName": "hub-tls", "defaultMode": 0o440}},
                    {"name": "client", "secret": {"secretName": "hub-client", "defaultMode": 0o440}},
                    {"name": "oidc-ca", "secret": {"secretName": "oidc-ca", "defaultMode": 0o444}},
                    {"name": "data", "emptyDir": {}},
                ],
            },
        },
    ]


@pytest.fixture(scope="module")
def hub(kube, images, provider, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    port, api_port, proxy_port = free_port(), free_port(), free_port()
    public = f"https://127.0.0.1:{port}"
    client = provider.register_client(CLIENT_ID, redirect_uri=f"{public}/hub/oauth_callback")
    certificates = tls.loopback_certificates(folder, "primage test hub CA", "hub")
    node = cluster.Settings().node_ip
    env = {
        "PRIMAGE_HUB_OIDC_ISSUER": provider.issuer,
        "PRIMAGE_HUB_OIDC_CLIENT_ID": CLIENT_ID,
        "PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE": "/var/run/secrets/primage-hub/client-secret",
        "PRIMAGE_HUB_OIDC_ALLOWED_GROUPS": oidc.PROJECT_GROUP,
        "PRIMAGE_HUB_OIDC_CA_FILE": "/etc/primage/oidc-ca/ca.crt",
        "PRIMAGE_HUB_PUBLIC_URL": public,
        "PRIMAGE_HUB_TLS_DIR": "/etc/primage/hub-tls",
        "PRIMAGE_HUB_PORT": str(port),
        "PRIMAGE_HUB_API_PORT": str(api_port),
        "PRIMAGE_HUB_PROXY_API_PORT": str(proxy_port),
        "PRIMAGE_HUB_API_URL": f"http://{node}:{api_port}",
        "PRIMAGE_HUB_NAMESPACE": NAMESPACE,
        "PRIMAGE_HUB_START_TIMEOUT": "180",
    }
    objects = hub_objects(images["jupyterhub"], images["jupyter"], env)
    kube.apply(objects[0])
    kube.apply(
        secret(
            "hub-tls",
            {"tls.crt": certificates.certificate.read_bytes(), "tls.key": certificates.key.read_bytes()},
            "kubernetes.io/tls",
        ),
        secret("hub-client", {"client-secret": client.secret.encode()}),
        secret("oidc-ca", {"ca.crt": provider.ca.read_bytes()}),
        *objects[1:],
    )
    bundle = folder / "browser-ca.crt"
    bundle.write_bytes(provider.ca.read_bytes() + certificates.ca.read_bytes())

    def healthy() -> bool:
        try:
            return requests.get(f"{public}/hub/health", verify=str(bundle), timeout=5).status_code == 200
        except requests.RequestException:
            return False

    kube.wait_for("the hub to answer over HTTPS", healthy, 180, ("logs", "primage-hub", "-n", NAMESPACE))
    yield {"public": public, "bundle": str(bundle), "client": client}
    kube.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)


def sign_in(provider, hub, username: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    return browser, provider.sign_in_at(browser, f"{hub['public']}/hub/oauth_login", username, hub["bundle"])


def notebook_pods(kube) -> list[dict]:
    return kube.items("pods", NAMESPACE, "-l", "component=singleuser-server")


def test_the_member_gets_their_own_notebook_pod_and_reaches_it_over_https(kube, provider, hub):
    browser, home = sign_in(provider, hub, "member")
    assert home.status_code == 200, home.text[:300]
    name = provider.user("member").subject.lower()
    started = browser.get(f"{hub['public']}/hub/spawn", verify=hub["bundle"], timeout=30)
    assert started.status_code == 200, started.text[:300]

    def lab_answers() -> bool:
        answer = browser.get(f"{hub['public']}/user/{name}/lab", verify=hub["bundle"], timeout=20)
        return answer.status_code == 200 and answer.url.startswith(f"{hub['public']}/user/{name}/lab")

    kube.wait_for(
        "the member's JupyterLab through the hub",
        lab_answers,
        240,
        ("get", "pods,events", "-n", NAMESPACE, "-o", "wide"),
    )
    status = browser.get(f"{hub['public']}/user/{name}/api/status", verify=hub["bundle"], timeout=20)
    assert status.status_code == 200
    assert "started" in status.json()
    (pod,) = notebook_pods(kube)
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"].startswith("primage/jupyter:")
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["runAsUser"] == APP_UID
    assert spec["securityContext"]["fsGroup"] == APP_UID
    # Inside the cluster the pod speaks plain HTTP to the proxy, and still answers nobody unsigned.
    direct = requests.get(f"http://{pod['status']['podIP']}:8888/user/{name}/api/status", timeout=20)
    assert direct.status_code == 403, direct.status_code
    assert "started" not in direct.text
    assert {"name": "home", "mountPath": "/home/primage"} in [
        {"name": m["name"], "mountPath": m["mountPath"]} for m in container["volumeMounts"]
    ]


def test_nobody_else_reaches_the_members_notebook(kube, provider, hub):
    name = provider.user("member").subject.lower()
    stranger = requests.Session()
    answer = stranger.get(f"{hub['public']}/user/{name}/lab", verify=hub["bundle"], timeout=20)
    assert answer.url.startswith(f"{hub['public']}/hub/login"), answer.url
    _, refused = sign_in(provider, hub, "outsider")
    assert refused.status_code == 403
    assert oidc.PROJECT_GROUP in refused.text
    assert len(notebook_pods(kube)) <= 1, "the outsider got no notebook pod"


def test_stopping_the_server_removes_the_pod(kube, provider, hub):
    browser, _ = sign_in(provider, hub, "member")
    name = provider.user("member").subject.lower()
    xsrf = next(c.value for c in browser.cookies if c.name == "_xsrf" and c.path.startswith("/hub"))
    answer = browser.delete(
        f"{hub['public']}/hub/api/users/{name}/server",
        headers={"X-XSRFToken": xsrf, "Referer": f"{hub['public']}/hub/home"},
        verify=hub["bundle"],
        timeout=60,
    )
    assert answer.status_code in (202, 204), answer.text[:300]
    deadline = time.monotonic() + 120
    while notebook_pods(kube) and time.monotonic() < deadline:
        time.sleep(1)
    assert notebook_pods(kube) == []
