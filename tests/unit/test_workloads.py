"""The applications' manifests from their one source, the role templates, rendered in-process:
every workload case through every check (one test each), the Onedata modes, the notebook token
and home, the input list limits, and the errors a user sees."""

from __future__ import annotations

import base64
import re
import shutil

import pytest
import yaml

from conftest import FIXTURES, ROOT
from primage import checks, paths, pieces, workloads
from primage.checks.registry import checks_for
from primage.errors import PrimageError

CASES = [p for p in pieces.discover() if p.kind == "workload-case"]
BROKEN = sorted((FIXTURES / "broken" / "workloads").glob("*.yml"))
SEGMENTATION = "registry.primage.example:5000/primage/segmentation:0.1.0-1a2b3c4"
NOTEBOOK = "registry.primage.example:5000/primage/jupyter:0.1.0-1a2b3c4"


def htc(**values):
    return workloads.render(
        "htc_batch", {"htc_batch_image": SEGMENTATION, "htc_batch_inputs": ["in/a.nii.gz"], **values}
    )


# The site's certificate and key (stand-ins: rendering never parses them; the image does at start).
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TLS = {"jupyter_tls_source": "content", "jupyter_tls_certificate": CERTIFICATE}
TLS_KEY = {"jupyter_tls_private_key": "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"}


def notebook(secrets=None, **values):
    return workloads.render(
        "jupyter",
        {"jupyter_image": NOTEBOOK, **TLS, **values},
        {"jupyter_token": "t0ken", **TLS_KEY, **(secrets or {})},
    )


def pod_of(workload, kind):
    (manifest,) = workload.of_kind(kind)
    return manifest.definition["spec"]["template"]["spec"]


def test_every_application_has_cases_of_both_modes():
    assert workloads.applications() == ["htc_batch", "jupyter"]
    for application in workloads.applications():
        names = {p.name for p in CASES if p.name.startswith(application)}
        assert {f"{application}-node-mode", f"{application}-pod-mode", f"{application}-private-registry"} <= names


@pytest.mark.parametrize("piece", CASES, ids=lambda p: p.name)
def test_case_passes_every_check(piece):
    """Every check passes but the server-side dry run, which needs the test cluster: unit tests never
    see one (tests/conftest.py), and tests/cluster runs this check there."""
    report = checks.run_checks(piece, checks_for(piece.kind))
    assert [f"{r.check}: {p}" for r in report.results for p in r.problems] == []
    statuses = {r.check: r.status for r in report.results}
    assert statuses.pop("dry-run") == checks.NOT_RUN
    (dry_run,) = [r for r in report.results if r.check == "dry-run"]
    assert dry_run.reason.startswith("no test cluster is up")
    assert [check for check, status in statuses.items() if status != checks.PASS] == []


@pytest.mark.parametrize("fixture", BROKEN, ids=lambda p: p.stem)
def test_broken_case_fails_with_its_message(primage, fixture):
    """`# expect:` is the exact message; `# expect-match:` a regular expression (for names with hashes)."""
    text = fixture.read_text()
    exact = re.search(r"^# expect: (.*)$", text, re.M)
    pattern = re.escape(exact.group(1)) if exact else re.search(r"^# expect-match: (.*)$", text, re.M).group(1)
    check = re.search(r"^# expect-check: (.*)$", text, re.M).group(1)
    run = primage("check", fixture, "--json")
    assert run.code == 1
    (piece,) = run.json()["pieces"]
    messages = [p["message"] for r in piece["results"] if r["check"] == check for p in r["problems"]]
    assert len(messages) == 1, messages
    assert re.fullmatch(pattern, messages[0]), messages[0]


def test_the_harness_renders_exactly_the_role_templates():
    single = notebook(
        jupyter_storage_size="1Gi",
        jupyter_registry_username="u",
        jupyter_onedata_mode="pod",
        jupyter_onedata_provider_host="p",
        secrets={"jupyter_registry_password": "pw", "jupyter_onedata_token": "tok"},
    )
    hub = workloads.load_case(ROOT / "ansible/roles/jupyter/ci/checkin.yml").render()
    rendered = {m.template for m in single.manifests + hub.manifests}
    on_disk = {
        str(p.relative_to(ROOT))
        for role in ("kubernetes_app", "jupyter")
        for p in (ROOT / "ansible/roles" / role / workloads.TEMPLATES_SUBDIR).glob("*.yaml.j2")
    }
    assert rendered == on_disk


def test_node_mode_sees_the_nodes_mount_with_no_capability():
    pod = pod_of(htc(htc_batch_space_mount_point="/srv/onedata", htc_batch_pod_mount_point="/data"), "Job")
    (container,) = pod["containers"]
    assert {"name": "onedata-space", "hostPath": {"path": "/srv/onedata", "type": "Directory"}} in pod["volumes"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "onedata-space")
    assert mount == {"name": "onedata-space", "mountPath": "/data", "mountPropagation": "HostToContainer"}
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]) == (1000, 1000)
    assert not [e for e in container["env"] if e["name"].startswith("ONECLIENT_")]
    assert {e["name"]: e["value"] for e in container["env"]}["PRIMAGE_INPUT_ROOT"] == "/data"


def test_pod_mode_gets_fuse_from_the_device_plugin_never_a_host_device():
    workload = htc(htc_batch_onedata_mode="pod", htc_batch_onedata_provider_host="provider.example")
    pod = pod_of(workload, "Job")
    (container,) = pod["containers"]
    assert container["image"] == SEGMENTATION + "-onedata"
    assert container["resources"]["requests"]["primage.eu/fuse"] == 1
    assert container["resources"]["limits"]["primage.eu/fuse"] == 1
    assert "SYS_ADMIN" in container["securityContext"]["capabilities"]["add"]
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert not [v for v in pod["volumes"] if "hostPath" in v]
    env = {e["name"]: e for e in container["env"]}
    assert env["ONECLIENT_ACCESS_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "onedata-token", "key": "token"}}
    assert env["PRIMAGE_UID"]["value"] == "1000"
    (job,) = workload.of_kind("Job")
    assert "SYS_ADMIN" in job.definition["metadata"]["annotations"]["checkov.io/skip-ckv_k8s_39"]


def test_the_fuse_resource_and_the_image_variant_are_values():
    shared = yaml.safe_load((ROOT / "ansible/roles/kubernetes_app/defaults/main.yml").read_text())
    assert shared["kubernetes_app_fuse_resource"] == "primage.eu/fuse"
    variant = "registry.primage.example:5000/primage/segmentation-fuse:0.1.0"
    pod = pod_of(
        htc(
            htc_batch_onedata_mode="pod",
            htc_batch_onedata_provider_host="p",
            htc_batch_onedata_image=variant,
            kubernetes_app_fuse_resource="example.org/fuse",
        ),
        "Job",
    )
    (container,) = pod["containers"]
    assert container["image"] == variant
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "example.org/fuse": 1}


def test_ten_thousand_inputs_are_one_job_and_one_configmap():
    inputs = [f"inputs/patient-{i:05d}/t1.nii.gz" for i in range(10_000)]
    workload = htc(htc_batch_inputs=inputs)
    assert workload.kinds() == {"Namespace": 1, "ConfigMap": 1, "Job": 1}
    (configmap,) = workload.of_kind("ConfigMap")
    assert configmap.definition["data"]["inputs.txt"].splitlines() == inputs
    assert workload.of_kind("Job")[0].definition["spec"]["completions"] == 10_000


def test_job_name_follows_its_content_but_not_parallelism():
    name = htc().of_kind("Job")[0].name
    assert re.fullmatch(r"htc-batch-[0-9a-f]{10}", name)
    assert htc(htc_batch_parallelism=50).of_kind("Job")[0].name == name
    assert htc(htc_batch_inputs=["in/b.nii.gz"]).of_kind("Job")[0].name != name
    assert htc(htc_batch_backoff_limit_per_index=5).of_kind("Job")[0].name != name


def test_exit_codes_a_retry_cannot_help_fail_their_index_at_once():
    spec = htc().of_kind("Job")[0].definition["spec"]
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "task", "operator": "In", "values": [64, 65, 66]},
    }
    # Sorted and unique, as the API server wants them.
    codes = htc(htc_batch_do_not_retry_exit_codes=[66, 65, 65]).of_kind("Job")[0].definition["spec"]
    assert codes["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [65, 66]
    assert "podFailurePolicy" not in htc(htc_batch_do_not_retry_exit_codes=[]).of_kind("Job")[0].definition["spec"]


def test_input_names_are_never_templates():
    (configmap,) = htc(htc_batch_inputs=["in/{{ lookup('env', 'HOME') }}.nii.gz"]).of_kind("ConfigMap")
    assert configmap.definition["data"]["inputs.txt"] == "in/{{ lookup('env', 'HOME') }}.nii.gz\n"


def test_notebook_reads_its_token_from_a_secret_file():
    workload = notebook()
    pod = pod_of(workload, "StatefulSet")
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "JUPYTER_TOKEN" not in env
    folder = env["JUPYTER_TOKEN_FILE"]["value"].rsplit("/", 1)[0]
    volume = next(v for v in pod["volumes"] if v["name"] == "notebook-token")
    assert volume["secret"] == {"secretName": "notebook-token", "defaultMode": 0o400}
    assert {"name": "notebook-token", "mountPath": folder, "readOnly": True} in container["volumeMounts"]


def test_notebook_without_a_token_is_refused():
    with pytest.raises(PrimageError, match="needs a token"):
        workloads.render("jupyter", {"jupyter_image": NOTEBOOK, **TLS}, {"jupyter_token": "", **TLS_KEY})


def test_the_notebook_speaks_https_with_its_tls_secret_mounted():
    workload = notebook()
    (secret,) = [m for m in workload.of_kind("Secret") if m.name == "notebook-tls"]
    assert secret.definition["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v).decode() for k, v in secret.definition["data"].items()}
    assert data == {"tls.crt": CERTIFICATE, "tls.key": TLS_KEY["jupyter_tls_private_key"]}
    pod = pod_of(workload, "StatefulSet")
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {"name": "notebook-tls", "mountPath": env["PRIMAGE_JUPYTER_TLS_DIR"], "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "notebook-tls", "secret": {"secretName": "notebook-tls", "defaultMode": 0o400}} in pod["volumes"]
    assert container["ports"] == [{"name": "https", "containerPort": 8888, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/api", "port": "https", "scheme": "HTTPS"}
    (service,) = workload.of_kind("Service")
    assert [(p["name"], p["targetPort"]) for p in service.definition["spec"]["ports"]] == [("https", "https")]


def test_https_without_a_certificate_is_refused_naming_the_options():
    with pytest.raises(
        PrimageError, match="serves HTTPS and needs a certificate and key: give jupyter_tls_certificate"
    ):
        workloads.render("jupyter", {"jupyter_image": NOTEBOOK}, {"jupyter_token": "t0ken"})


def test_with_tls_off_the_notebook_speaks_http_and_has_no_tls_secret():
    workload = workloads.render(
        "jupyter", {"jupyter_image": NOTEBOOK, "jupyter_tls_enabled": False}, {"jupyter_token": "t0ken"}
    )
    assert [m.name for m in workload.of_kind("Secret")] == ["notebook-token"]
    (container,) = pod_of(workload, "StatefulSet")["containers"]
    assert "PRIMAGE_JUPYTER_TLS_DIR" not in {e["name"] for e in container["env"]}
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTP"


def test_home_is_a_claim_only_when_a_size_is_set():
    assert "PersistentVolumeClaim" not in notebook().kinds()
    workload = notebook(jupyter_storage_size="5Gi")
    (claim,) = workload.of_kind("PersistentVolumeClaim")
    assert claim.definition["spec"]["resources"]["requests"]["storage"] == "5Gi"
    home = next(v for v in pod_of(workload, "StatefulSet")["volumes"] if v["name"] == "home")
    assert home == {"name": "home", "persistentVolumeClaim": {"claimName": claim.name}}


def test_the_notebook_home_is_the_images_home_with_its_user():
    pod = pod_of(notebook(), "StatefulSet")
    (container,) = pod["containers"]
    home = next(m for m in container["volumeMounts"] if m["name"] == "home")
    assert home["mountPath"] == "/home/primage"
    context = pod["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (1000, 1000, 1000)


@pytest.mark.parametrize("kind", ["Job", "StatefulSet"])
def test_the_image_pull_policy_is_an_option(kind):
    render = htc if kind == "Job" else notebook
    prefix = "htc_batch" if kind == "Job" else "jupyter"
    (container,) = pod_of(render(), kind)["containers"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    (container,) = pod_of(render(**{f"{prefix}_image_pull_policy": "Never"}), kind)["containers"]
    assert container["imagePullPolicy"] == "Never"
    with pytest.raises(PrimageError, match=re.escape("must be one of: IfNotPresent, Always, Never")):
        render(**{f"{prefix}_image_pull_policy": "Sometimes"})


def test_secrets_are_redacted_in_yaml_unless_asked():
    workload = notebook()
    assert "t0ken" not in workloads.to_yaml(workload)
    assert workloads.REDACTED in workloads.to_yaml(workload)
    secret = next(
        d for d in yaml.safe_load_all(workloads.to_yaml(workload, reveal_secrets=True)) if d["kind"] == "Secret"
    )
    assert secret["data"]["token"] == "dDBrZW4="  # noqa: S105 - base64 of the test value


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"htc_batch_parallelism": "many"}, "htc_batch_parallelism"),
        ({"htc_batch_onedata_mode": "fuse"}, "must be one of: node, pod"),
        ({"htc_batch_imgae": "x"}, "'htc_batch_imgae' is not an option of htc_batch"),
        ({"kubernetes_app_name": "x"}, "'kubernetes_app_name' is not an option of htc_batch"),
    ],
)
def test_bad_values_name_the_field(values, message):
    with pytest.raises(PrimageError, match=re.escape(message)):
        htc(**values)


@pytest.mark.parametrize("inputs", [[], "inputs/a.nii.gz", [1, 2]], ids=["empty", "a-string", "numbers"])
def test_the_input_list_must_be_a_non_empty_list_of_paths(inputs):
    with pytest.raises(PrimageError, match="'htc_batch_inputs' is needed, a non-empty list of strings"):
        workloads.render("htc_batch", {"htc_batch_image": SEGMENTATION, "htc_batch_inputs": inputs})


def test_an_unknown_application_is_refused():
    with pytest.raises(PrimageError, match="'registry' is no application with Kubernetes manifests"):
        workloads.render("registry", {})


def test_a_new_case_file_is_a_new_piece(primage, tmp_path, monkeypatch):
    copy = tmp_path / "repo"
    for name in ("tosca", "radl", "ansible", "containers"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("molecule", ".cache"))
    for name in ("pyproject.toml", ".yamllint", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    monkeypatch.setenv("PRIMAGE_ROOT", str(copy))
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path / "cache"))
    paths.root.cache_clear()
    try:
        (copy / "ansible/roles/htc_batch/ci/gpu-pool.yml").write_text(
            f"---\nvalues:\n  htc_batch_image: {SEGMENTATION}\n  htc_batch_node_selector: {{gpu: 'true'}}\n"
            "  htc_batch_inputs: [in/a.nii.gz]\n"
        )
        listing = {(p["name"], p["kind"]) for p in primage("list", "--json").json()}
        assert ("htc_batch-gpu-pool", "workload-case") in listing
    finally:
        paths.root.cache_clear()


@pytest.mark.parametrize("piece", [p for p in CASES if "pod-mode" not in p.name], ids=lambda p: p.name)
def test_node_mode_needs_only_the_space_volume_so_a_local_folder_can_stand_in(piece):
    workload = workloads.load_case(piece.path).render()
    for manifest in workload.manifests:
        if manifest.kind not in ("Job", "StatefulSet"):
            continue
        pod = manifest.definition["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        space = [v for v in pod["volumes"] if v["name"] == workloads.space_volume()]
        assert [list(v) for v in space] == [["name", "hostPath"]]
        assert [v for v in pod["volumes"] if "hostPath" in v] == space
        mounts = [m for m in container["volumeMounts"] if m["name"] == workloads.space_volume()]
        assert len(mounts) == 1
        assert mounts[0]["mountPropagation"] == "HostToContainer"
        assert not [e for e in container.get("env", []) if e["name"].startswith("ONECLIENT_")]
        assert "add" not in container["securityContext"]["capabilities"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"allowPrivilegeEscalation": True}, "must set allowPrivilegeEscalation false"),
        ({"allowPrivilegeEscalation": None}, "must set allowPrivilegeEscalation false"),
        ({"privileged": None}, "must set privileged false"),
    ],
)
def test_the_rules_check_refuses_a_pod_mode_container_that_may_gain_privileges(change, message):
    """Pod mode adds SYS_ADMIN, and no more: privilege escalation off and never privileged, as rendered."""
    from primage.checks import workload_checks

    (job,) = [
        m.definition
        for m in htc(htc_batch_onedata_mode="pod", htc_batch_onedata_provider_host="p").manifests
        if m.kind == "Job"
    ]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    piece = next(p for p in CASES if p.name == "htc_batch-pod-mode")
    assert workload_checks._container_problems(piece, "Job", container, pod["securityContext"]) == []
    context = container["securityContext"]
    for key, value in change.items():
        if value is None:
            del context[key]
        else:
            context[key] = value
    (problem,) = workload_checks._container_problems(piece, "Job", container, pod["securityContext"])
    assert problem.message == f"Job container task: {message}"
