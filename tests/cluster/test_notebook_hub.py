"""The notebook hub on the real one-node cluster: EGI Check-in sign-in (the test provider on
loopback), a notebook pod per member spawned by KubeSpawner, nothing for anyone else.

The hub runs as the jupyter role deploys it with `jupyter_auth: checkin`: the manifests are the
role's templates rendered by primage.workloads (a Deployment of the `jupyterhub` image, its
service account allowed to manage pods in its namespace, its Secrets as files). It shares the
node's network (`jupyter_hub_host_network`) so that it reaches the provider, which listens on
loopback only (a site's hub reaches Check-in on the internet instead). The member signs in
through the whole browser flow (HTTP requests), starts their server, and reaches their own
JupyterLab through the hub's HTTPS port; the notebook pod runs the jupyter image of this
revision as its user, with no service-account token and privilege escalation off. The outsider
is refused, a signed-out browser gets the sign-in page, and stopping the server removes the pod."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from cluster_verify import Kube

from primage import cluster, oidc, tls, workloads
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


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """The space as node mode wants it, a shared mount point (as oneclient's on a systemd node): this
    host's root mount is private, so the folder is bind-mounted onto itself and made shared."""
    folder = tmp_path_factory.mktemp("hub-space") / "space"
    folder.mkdir()
    subprocess.run(["mount", "--bind", folder, folder], check=True)
    try:
        subprocess.run(["mount", "--make-shared", folder], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", folder], check=False)


@pytest.fixture(scope="module")
def hub(kube, images, provider, space, tmp_path_factory):
    """The jupyter role's hub mode, its manifests rendered from the role templates as the role
    renders them (primage.workloads), with the options a one-node cluster without a registry needs."""
    folder = tmp_path_factory.mktemp("hub")
    port, api_port, proxy_port = free_port(), free_port(), free_port()
    public = f"https://127.0.0.1:{port}"
    client = provider.register_client(CLIENT_ID, redirect_uri=f"{public}/hub/oauth_callback")
    certificates = tls.loopback_certificates(folder, "primage test hub CA", "hub")
    node = cluster.Settings().node_ip
    workload = workloads.render(
        "jupyter",
        {
            "jupyter_auth": "checkin",
            "jupyter_name": NAMESPACE,
            "jupyter_image": images["jupyter"],
            "jupyter_hub_image": images["jupyterhub"],
            "jupyter_image_pull_policy": "Never",
            "jupyter_oidc_issuer": provider.issuer,
            "jupyter_oidc_client_id": CLIENT_ID,
            "jupyter_oidc_allowed_groups": [oidc.PROJECT_GROUP],
            "jupyter_oidc_ca_certificate": provider.ca.read_text(),
            "jupyter_tls_source": "content",
            "jupyter_tls_certificate": certificates.certificate.read_text(),
            "jupyter_hub_public_url": public,
            # The provider listens on the node's loopback only: the hub shares the node's network.
            "jupyter_hub_host_network": True,
            "jupyter_hub_port": port,
            "jupyter_hub_api_port": api_port,
            "jupyter_hub_proxy_api_port": proxy_port,
            "jupyter_hub_api_url": f"http://{node}:{api_port}",
            "jupyter_hub_start_timeout": 180,
            "jupyter_service_type": "ClusterIP",
            "jupyter_space_mount_point": str(space),
        },
        {"jupyter_oidc_client_secret": client.secret, "jupyter_tls_private_key": certificates.key.read_text()},
    )
    namespaces = [m.definition for m in workload.of_kind("Namespace")]
    kube.apply(*namespaces)
    kube.apply(*[m.definition for m in workload.manifests if m.kind != "Namespace"])
    bundle = folder / "browser-ca.crt"
    bundle.write_bytes(provider.ca.read_bytes() + certificates.ca.read_bytes())

    def healthy() -> bool:
        try:
            return requests.get(f"{public}/hub/health", verify=str(bundle), timeout=5).status_code == 200
        except requests.RequestException:
            return False

    kube.wait_for(
        "the hub to answer over HTTPS", healthy, 180, ("logs", "deployment/primage-hub-test-hub", "-n", NAMESPACE)
    )
    yield {"public": public, "bundle": str(bundle), "client": client, "space": space}
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
        (
            "get",
            "events",
            "-n",
            NAMESPACE,
            "-o",
            "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MSG:.message",
        ),
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
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["home"] == "/home/primage"
    # The space the nodes mount (node mode), at the path the HTC tasks see it.
    assert mounts["space"] == "/mnt/onedata"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["space"]["hostPath"]["path"] == str(hub["space"])


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
