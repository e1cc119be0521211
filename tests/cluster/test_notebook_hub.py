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
is refused, a signed-out browser gets the sign-in page, and stopping the server removes the pod.

A second hub of the same role runs Onedata pod mode (`jupyter_onedata_mode: pod`): the member's
notebook pod is the jupyter image's `-onedata` variant (its test build: the stub oneclient mounting
a folder of the image with bindfs through the FUSE device plugin), and mounts the space with the
token the member typed into the spawn form, kept in a Secret of the member's server only: not in
the pod's spec, the hub's database or its log, owned by the pod, and gone when the server stops."""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
from urllib.parse import urljoin

import pytest
import requests
from cluster_verify import Kube

from primage import cluster, oidc, tls, workloads
from primage.im_server import free_port
from primage.oidc.provider import LocalProvider
from support.onedata_pod import new_token

pytestmark = pytest.mark.cluster

NAMESPACE = "primage-hub-test"
POD_MODE = "primage-hub-pod-mode"  # the second hub's name and namespace
CLIENT_ID = "primage-notebooks"
PROVIDER_HOST = "provider.onedata.test"
APP_UID = 1000


@pytest.fixture(scope="module")
def images(built) -> dict[str, str]:
    from primage.commands import htc
    from primage.images import testing

    found = {name: htc.ensure_application_image(name) for name in ("jupyterhub", "jupyter")}
    return {**found, "jupyter-onedata": testing.ensure_test_build("jupyter")}


@pytest.fixture(scope="module")
def kube(images):
    cluster.up(images=list(images.values()))  # with the FUSE device plugin, for pod mode
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


def deploy_hub(kube, images, provider, folder, name: str, values: dict) -> dict:
    """The jupyter role's hub mode, its manifests rendered from the role templates as the role
    renders them (primage.workloads), with the options a one-node cluster without a registry needs."""
    port, api_port, proxy_port = free_port(), free_port(), free_port()
    public = f"https://127.0.0.1:{port}"
    client = provider.register_client(f"{CLIENT_ID}-{name}", redirect_uri=f"{public}/hub/oauth_callback")
    certificates = tls.loopback_certificates(folder, "primage test hub CA", "hub")
    node = cluster.Settings().node_ip
    workload = workloads.render(
        "jupyter",
        {
            "jupyter_auth": "checkin",
            "jupyter_name": name,
            "jupyter_image": images["jupyter"],
            "jupyter_hub_image": images["jupyterhub"],
            "jupyter_image_pull_policy": "Never",
            "jupyter_oidc_issuer": provider.issuer,
            "jupyter_oidc_client_id": client.client_id,
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
            **values,
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

    kube.wait_for("the hub to answer over HTTPS", healthy, 180, ("logs", f"deployment/{name}-hub", "-n", name))
    return {"public": public, "bundle": str(bundle), "client": client, "namespace": name}


@pytest.fixture(scope="module")
def hub(kube, images, provider, space, tmp_path_factory):
    deployed = deploy_hub(
        kube, images, provider, tmp_path_factory.mktemp("hub"), NAMESPACE, {"jupyter_space_mount_point": str(space)}
    )
    yield {**deployed, "space": space}
    kube.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)


@pytest.fixture(scope="module")
def pod_mode_hub(kube, images, provider, tmp_path_factory):
    deployed = deploy_hub(
        kube,
        images,
        provider,
        tmp_path_factory.mktemp("pod-mode-hub"),
        POD_MODE,
        {
            "jupyter_onedata_mode": "pod",
            "jupyter_onedata_image": images["jupyter-onedata"],
            "jupyter_onedata_provider_host": PROVIDER_HOST,
        },
    )
    yield deployed
    kube.run("delete", "namespace", POD_MODE, "--wait=true", "--timeout=120s", check=False)


def sign_in(provider, hub, username: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    return browser, provider.sign_in_at(browser, f"{hub['public']}/hub/oauth_login", username, hub["bundle"])


def notebook_pods(kube, namespace: str = NAMESPACE) -> list[dict]:
    return kube.items("pods", namespace, "-l", "component=singleuser-server")


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


# --------------------------------------------------------------------------- Onedata pod mode


def test_in_pod_mode_the_members_notebook_mounts_the_space_with_their_own_token(kube, provider, pod_mode_hub):
    hub = pod_mode_hub
    namespace = hub["namespace"]
    browser, home = sign_in(provider, hub, "member")
    assert home.status_code == 200, home.text[:300]
    name = provider.user("member").subject.lower()
    form = browser.get(f"{hub['public']}/hub/spawn", verify=hub["bundle"], timeout=30)
    assert form.status_code == 200
    assert 'name="onedata_token"' in form.text
    assert 'type="password"' in form.text
    assert notebook_pods(kube, namespace) == [], "the form starts nothing before the token is given"
    # The form posts where the page says (JupyterHub puts its XSRF token in that address).
    action = urljoin(form.url, html.unescape(re.search(r'id="spawn_form"\s+action="([^"]+)"', form.text).group(1)))
    empty = browser.post(action, data={"onedata_token": " "}, verify=hub["bundle"], timeout=30)
    assert "Give your Onedata access token" in empty.text, empty.text[:500]
    assert notebook_pods(kube, namespace) == []
    token = new_token()
    started = browser.post(action, data={"onedata_token": token}, verify=hub["bundle"], timeout=60)
    assert started.status_code == 200, started.text[:300]

    def lab_answers() -> bool:
        answer = browser.get(f"{hub['public']}/user/{name}/lab", verify=hub["bundle"], timeout=20)
        return answer.status_code == 200 and answer.url.startswith(f"{hub['public']}/user/{name}/lab")

    kube.wait_for(
        "the member's JupyterLab in pod mode",
        lab_answers,
        240,
        ("get", "events", "-n", namespace, "-o", "custom-columns=OBJECT:.involvedObject.name,MSG:.message"),
    )
    (pod,) = notebook_pods(kube, namespace)
    (container,) = pod["spec"]["containers"]
    assert container["image"] == pod_mode_hub_variant(kube, namespace)
    env = {e["name"]: e for e in container["env"]}
    reference = env["ONECLIENT_ACCESS_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = kube.get("secret", reference["name"], namespace)
    assert reference["name"].startswith("onedata-token-")
    assert base64_text(secret["data"][reference["key"]]) == token, "the member's own token, as typed"
    # The pod owns the Secret: Kubernetes deletes it with the pod, also while the hub is down.
    owners = [(o["kind"], o["name"], o["uid"]) for o in secret["metadata"].get("ownerReferences", [])]
    assert owners == [("Pod", pod["metadata"]["name"], pod["metadata"]["uid"])]
    assert token not in json.dumps(pod), "the token is in the pod's spec"
    assert env["ONECLIENT_PROVIDER_HOST"]["value"] == PROVIDER_HOST
    assert container["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN", "SETUID", "SETGID"]
    assert container["resources"]["limits"]["primage.eu/fuse"] == "1"
    # The space is a FUSE mount in the member's pod, made by oneclient (the stub) with that token.
    mounts = kube.run("exec", "-n", namespace, pod["metadata"]["name"], "--", "cat", "/proc/mounts").stdout
    assert any(line.split()[1] == "/mnt/onedata" and line.split()[2].startswith("fuse") for line in mounts.splitlines())
    log = kube.run("logs", "-n", namespace, pod["metadata"]["name"]).stdout
    assert f"oneclient (stub): provider {PROVIDER_HOST}" in log
    assert token not in log
    # Nothing of it in the hub: its log, or the database JupyterHub keeps its users' options in.
    hub_log = kube.run("logs", "-n", namespace, f"deployment/{namespace}-hub").stdout
    assert token not in hub_log
    assert "onedata-token" in hub_log  # the Secret's name is logged, never its value
    found = kube.run(
        "exec", "-i", "-n", namespace, f"deployment/{namespace}-hub", "--", "python3", "-c",
        "import sys; t = sys.stdin.read().encode(); print(t in open('/srv/jupyterhub/jupyterhub.sqlite', 'rb').read())",
        stdin=token,
    ).stdout.strip()  # fmt: skip
    assert found == "False", "the token is in the hub's database"

    # Stopping the server removes the pod and the Secret with the member's token.
    xsrf = next(c.value for c in browser.cookies if c.name == "_xsrf" and c.path.startswith("/hub"))
    answer = browser.delete(
        f"{hub['public']}/hub/api/users/{name}/server",
        headers={"X-XSRFToken": xsrf, "Referer": f"{hub['public']}/hub/home"},
        verify=hub["bundle"],
        timeout=60,
    )
    assert answer.status_code in (202, 204), answer.text[:300]
    kube.wait_for(
        "the member's pod and Secret to go",
        lambda: not notebook_pods(kube, namespace) and not kube.items("secrets", namespace, "-l",
                                                                         "app.kubernetes.io/component=onedata-token"),
        120,
        ("get", "pods,secrets", "-n", namespace),
    )  # fmt: skip


def pod_mode_hub_variant(kube, namespace: str) -> str:
    (deployment,) = kube.items("deployments", namespace)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return next(e["value"] for e in container["env"] if e["name"] == "PRIMAGE_HUB_NOTEBOOK_IMAGE")


def base64_text(value: str) -> str:
    import base64

    return base64.b64decode(value).decode()
