"""The jupyter role's hub mode (jupyter_auth checkin), rendered from the role templates as the
role renders them: what the hub gets (its settings, its Secrets as files, its rights), what it
never gets (a shared token, a secret in its environment, rights outside its namespace), and the
errors that name the option to fix. The same manifests run on the real cluster in
tests/cluster/test_notebook_hub.py."""

from __future__ import annotations

import base64

import pytest

from primage import workloads
from primage.errors import PrimageError

NOTEBOOK = "registry.primage.example:5000/primage/jupyter:0.1.0-1a2b3c4"
HUB = "registry.primage.example:5000/primage/jupyterhub:0.1.0-1a2b3c4"
CLIENT_SECRET = "client-secret-never-in-the-environment"  # noqa: S105 (a test value)
BASE = {
    "jupyter_auth": "checkin",
    "jupyter_image": NOTEBOOK,
    "jupyter_hub_image": HUB,
    "jupyter_oidc_client_id": "primage-notebooks",
    "jupyter_tls_source": "content",
    "jupyter_tls_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
}
SECRETS = {
    "jupyter_oidc_client_secret": CLIENT_SECRET,
    "jupyter_tls_private_key": "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
}


def hub(**values):
    return workloads.render("jupyter", {**BASE, **values}, SECRETS)


def hub_pod(workload) -> dict:
    (deployment,) = workload.of_kind("Deployment")
    return deployment.definition["spec"]["template"]["spec"]


def environment(workload) -> dict[str, str]:
    (container,) = hub_pod(workload)["containers"]
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_hub_replaces_the_single_notebook_and_its_token():
    workload = hub()
    kinds = sorted(m.kind for m in workload.manifests)
    assert "StatefulSet" not in kinds
    assert kinds.count("Deployment") == 1
    assert [m.name for m in workload.of_kind("Secret")] == ["notebook-tls", "hub-oidc"]
    assert not any(item.startswith("JUPYTER_TOKEN") for item in environment(workload))


def test_the_hub_reads_the_client_secret_as_a_file_never_from_its_environment():
    workload = hub(jupyter_oidc_ca_certificate="-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----")
    (secret,) = [m for m in workload.of_kind("Secret") if m.name == "hub-oidc"]
    assert base64.b64decode(secret.definition["data"]["client-secret"]).decode() == CLIENT_SECRET
    assert "issuer-ca.crt" in secret.definition["data"]
    env = environment(workload)
    assert CLIENT_SECRET not in repr(hub_pod(workload))
    assert env["PRIMAGE_HUB_OIDC_CLIENT_SECRET_FILE"] == "/var/run/secrets/primage-hub/client-secret"  # noqa: S105 (a path)
    assert env["PRIMAGE_HUB_OIDC_CA_FILE"] == "/var/run/secrets/primage-hub/issuer-ca.crt"
    volumes = {v["name"]: v for v in hub_pod(workload)["volumes"]}
    assert volumes["hub-oidc"]["secret"] == {"secretName": "hub-oidc", "defaultMode": 0o440}
    shown = workloads.to_yaml(workload)
    assert workloads.REDACTED in shown
    assert CLIENT_SECRET not in shown


def test_the_hub_settings_come_from_the_role_options():
    env = environment(
        hub(
            jupyter_oidc_allowed_groups=["urn:a#x", "urn:b#x"],
            jupyter_oidc_scopes=["openid", "eduperson_entitlement"],
            jupyter_oidc_token_auth="client_secret_post",  # noqa: S106 (a method name)
            jupyter_public_host="notebooks.example.eu",
            jupyter_node_port=31443,
            jupyter_resources={"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
            jupyter_space_mount_point="/srv/space",
            jupyter_pod_mount_point="/data",
        )
    )
    assert env["PRIMAGE_HUB_OIDC_ISSUER"] == "https://aai.egi.eu/auth/realms/egi"
    assert env["PRIMAGE_HUB_OIDC_ALLOWED_GROUPS"] == "urn:a#x urn:b#x"
    assert env["PRIMAGE_HUB_OIDC_SCOPES"] == "openid eduperson_entitlement"
    assert env["PRIMAGE_HUB_OIDC_TOKEN_AUTH"] == "client_secret_post"  # noqa: S105 (a method name)
    assert env["PRIMAGE_HUB_PUBLIC_URL"] == "https://notebooks.example.eu:31443"
    assert env["PRIMAGE_HUB_API_URL"] == "http://jupyter-hub-api.jupyter.svc:8081"
    assert env["PRIMAGE_HUB_NOTEBOOK_IMAGE"] == NOTEBOOK
    assert (env["PRIMAGE_HUB_CPU_LIMIT"], env["PRIMAGE_HUB_MEMORY_LIMIT"]) == ("4", "8G")
    assert (env["PRIMAGE_HUB_CPU_GUARANTEE"], env["PRIMAGE_HUB_MEMORY_GUARANTEE"]) == ("0.25", "512M")
    assert (env["PRIMAGE_HUB_SPACE_HOST_PATH"], env["PRIMAGE_HUB_SPACE_MOUNT"]) == ("/srv/space", "/data")
    assert "PRIMAGE_HUB_HOME_STORAGE_CLASS" not in env
    assert "PRIMAGE_HUB_OIDC_CA_FILE" not in env


def test_the_hub_may_manage_pods_and_claims_in_its_namespace_only():
    workload = hub()
    (role,) = workload.of_kind("Role")
    assert not workload.of_kind("ClusterRole")
    assert not workload.of_kind("ClusterRoleBinding")
    assert role.definition["metadata"]["namespace"] == "jupyter"
    granted = {resource for rule in role.definition["rules"] for resource in rule["resources"]}
    assert granted == {"pods", "events", "persistentvolumeclaims"}
    assert all("*" not in rule["verbs"] for rule in role.definition["rules"])
    (account,) = workload.of_kind("ServiceAccount")
    assert hub_pod(workload)["serviceAccountName"] == account.name
    (binding,) = workload.of_kind("RoleBinding")
    assert binding.definition["subjects"] == [{"kind": "ServiceAccount", "name": account.name, "namespace": "jupyter"}]


def test_only_the_https_port_is_published_the_api_stays_inside_the_cluster():
    services = {m.name: m.definition["spec"] for m in hub().of_kind("Service")}
    assert services["jupyter"]["type"] == "NodePort"
    assert [(p["name"], p["nodePort"]) for p in services["jupyter"]["ports"]] == [("https", 30888)]
    assert services["jupyter-hub-api"]["type"] == "ClusterIP"
    assert services["jupyter"]["selector"]["app.kubernetes.io/component"] == "hub"


def test_each_user_gets_a_home_claim_when_a_size_and_class_are_given():
    env = environment(hub(jupyter_storage_size="20Gi", jupyter_storage_class="standard"))
    assert (env["PRIMAGE_HUB_HOME_STORAGE_CLASS"], env["PRIMAGE_HUB_HOME_SIZE"]) == ("standard", "20Gi")
    assert not [
        m
        for m in hub(jupyter_storage_size="20Gi", jupyter_storage_class="standard").of_kind("PersistentVolumeClaim")
        if m.name == "jupyter-home"
    ]


def test_the_hub_runs_unprivileged_on_a_read_only_root():
    pod = hub_pod(hub())
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "hostNetwork" not in pod
    assert hub_pod(hub(jupyter_hub_host_network=True))["hostNetwork"] is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jupyter_hub_image": ""}, r"needs jupyter_hub_image, .*pinned"),
        ({"jupyter_hub_image": "primage/jupyterhub:latest"}, r"jupyter_hub_image.*'primage/jupyterhub:latest'"),
        ({"jupyter_oidc_client_id": ""}, r"needs jupyter_oidc_client_id"),
        (
            {"jupyter_oidc_issuer": "http://aai.example"},
            r"jupyter_oidc_issuer 'http://aai.example' is not an https URL",
        ),
        ({"jupyter_oidc_allowed_groups": []}, r"needs jupyter_oidc_allowed_groups.*nobody would get in"),
        ({"jupyter_oidc_scopes": ["profile"]}, r"jupyter_oidc_scopes must hold openid"),
        ({"jupyter_tls_enabled": False}, r"serves HTTPS only and needs jupyter_tls_enabled"),
        ({"jupyter_storage_size": "10Gi"}, r"needs its jupyter_storage_class"),
        (
            {"jupyter_onedata_mode": "pod", "jupyter_onedata_provider_host": "p"},
            r"its user's own Onedata token.*remove jupyter_onedata_token",
        ),
        ({"jupyter_onedata_mode": "pod"}, r"in pod mode needs jupyter_onedata_provider_host"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_hub_settings_are_refused_naming_the_option(values, message):
    secrets = dict(SECRETS)
    if "jupyter_onedata_provider_host" in values:
        secrets["jupyter_onedata_token"] = "tok"  # noqa: S105 (a test value)
    with pytest.raises(PrimageError, match=message):
        workloads.render("jupyter", {**BASE, **values}, secrets)


PROVIDER = "plg-cyfronet-01.datahub.egi.eu"
HELP_PAGE = "https://datahub.egi.eu"  # where members create their access token


def test_in_pod_mode_each_notebook_mounts_the_space_with_its_members_own_token():
    """No shared token anywhere: the hub starts the -onedata variant with each member's token
    (primage_spawner), may write and delete Secrets in its namespace for that, and stays unprivileged."""
    workload = hub(
        jupyter_onedata_mode="pod",
        jupyter_onedata_provider_host=PROVIDER,
        jupyter_onedata_token_help_url=HELP_PAGE,
    )
    assert [m.name for m in workload.of_kind("Secret")] == ["notebook-tls", "hub-oidc"]  # no onedata-token
    env = environment(workload)
    assert env["PRIMAGE_HUB_NOTEBOOK_IMAGE"] == NOTEBOOK + "-onedata"
    assert env["PRIMAGE_HUB_ONEDATA_PROVIDER_HOST"] == PROVIDER
    assert env["PRIMAGE_HUB_ONEDATA_FUSE_RESOURCE"] == "primage.eu/fuse"
    assert env["PRIMAGE_HUB_ONEDATA_APPARMOR_PROFILE"] == "Unconfined"
    assert env["PRIMAGE_HUB_ONEDATA_TOKEN_HELP_URL"] == HELP_PAGE
    assert env["PRIMAGE_HUB_SPACE_MOUNT"] == "/mnt/onedata"
    assert "PRIMAGE_HUB_SPACE_HOST_PATH" not in env
    (role,) = workload.of_kind("Role")
    rules = {resource: rule["verbs"] for rule in role.definition["rules"] for resource in rule["resources"]}
    assert rules["secrets"] == ["create", "update", "patch", "delete"]  # never get or list: it reads no Secret back
    pod = hub_pod(workload)
    (container,) = pod["containers"]
    # Pod mode is the notebooks', not the hub's.
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert not [name for name in container["resources"].get("limits", {}) if "/" in name]
    # Node mode gives the hub no Secret to touch.
    assert "secrets" not in {r for rule in hub().of_kind("Role")[0].definition["rules"] for r in rule["resources"]}


def test_a_hub_without_a_client_secret_is_refused():
    with pytest.raises(PrimageError, match=r"needs jupyter_oidc_client_secret, the secret of client primage-notebooks"):
        workloads.render("jupyter", BASE, {"jupyter_tls_private_key": SECRETS["jupyter_tls_private_key"]})
