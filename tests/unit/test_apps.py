"""The application layer without an engine: the rendered workloads as the local backend maps them to
containers, the inputs of a space, the record, the progress line, the Onedata config, the errors.
The engine side (real containers of the real images) is tests/apps/."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from primage import workloads
from primage.apps import backend as backends
from primage.apps import inputs, model, onedata, podspec, prepare, store
from primage.apps.local import LocalBackend, _do_not_retry
from primage.apps.progress import Progress
from primage.errors import PrimageError, UsageError

IMAGE = "primage/segmentation:0.1.0-g1a2b3c4"
NOTEBOOK = "primage/jupyter:0.1.0-g1a2b3c4"


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path / "cache"))
    return LocalBackend(store.Store(tmp_path / "state"))


def space_with(tmp_path: Path, *names: str) -> Path:
    space = tmp_path / "space"
    for name in names:
        path = space / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return space


def htc_plan(local, space: Path, files="inputs/*", name="liver", **fields) -> prepare.HtcPlan:
    submission = model.Submission(
        name=name, kind="htc", backend="local", image=IMAGE, space=str(space), files=files,
        output=model.default_output(name), parallelism=2, retries=1, **fields,
    )  # fmt: skip
    return prepare.htc(submission, local, space)


def job_container(local, plan: prepare.HtcPlan, tmp_path: Path) -> podspec.ContainerPlan:
    return podspec.translate(
        plan.job["spec"]["template"], plan.objects(), files_dir=tmp_path / "files", claim_prefix="p", where="job"
    )


# --- the rendered Job as a local container ------------------------------------------------------


def test_the_local_container_is_the_jobs_container(local, tmp_path):
    space = space_with(tmp_path, "inputs/a.nii.gz", "inputs/b.nii")
    plan = htc_plan(local, space)
    pod = plan.job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    local_plan = job_container(local, plan, tmp_path)
    assert local_plan.image == container["image"] == IMAGE
    env = local_plan.environment()
    assert env == {e["name"]: e["value"] for e in container["env"]}
    assert env["PRIMAGE_OUTPUT_DIR"] == "/mnt/onedata/outputs/liver"
    assert local_plan.create["user"] == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    host = local_plan.host_config
    assert host["read_only"] is True
    assert host["cap_drop"] == ["ALL"]
    assert host["security_opt"] == ["no-new-privileges"]
    assert host["nano_cpus"] == 2 * 10**9  # limits.cpu "2"
    assert host["mem_limit"] == 4 * 2**30  # limits.memory "4Gi"
    assert host["cpu_shares"] == 512  # requests.cpu 500m, as the kubelet maps it
    mounts = {m["target"]: m for m in host["mounts"]}
    # The space volume (a hostPath in node mode) is the folder itself, at the same in-container path.
    space_mount = next(m for m in container["volumeMounts"] if m["name"] == workloads.space_volume())
    assert mounts[space_mount["mountPath"]]["source"] == str(space)
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert mounts["/tmp"]["tmpfs_mode"] == 0o1777
    # The input-list ConfigMap is a file where the ConfigMap goes, read-only.
    listed = mounts["/etc/primage/htc-batch"]
    assert listed["read_only"] is True
    (configmap,) = plan.workload.of_kind("ConfigMap")
    files = {f.path.name: f.data.decode() for f in local_plan.files}
    assert files == configmap.definition["data"]
    assert all(f.path.parent == Path(listed["source"]) for f in local_plan.files)
    assert files["inputs.txt"] == "inputs/a.nii.gz\ninputs/b.nii\n"


def test_the_configmap_files_are_written_readable_by_the_pods_user(local, tmp_path):
    plan = htc_plan(local, space_with(tmp_path, "inputs/a.nii.gz"))
    local_plan = job_container(local, plan, tmp_path)
    podspec.write_files(local_plan)
    written = tmp_path / "files" / "input-list" / "inputs.txt"
    assert written.read_text() == "inputs/a.nii.gz\n"
    assert oct(written.stat().st_mode & 0o777) == oct(podspec.CONFIGMAP_DEFAULT_MODE)
    if os.geteuid() == 0:
        assert written.stat().st_uid == local_plan.user[0]


def test_retries_and_the_do_not_retry_codes_come_from_the_job(local, tmp_path):
    plan = htc_plan(local, space_with(tmp_path, "inputs/a.nii.gz"))
    spec = plan.job["spec"]
    assert spec["backoffLimitPerIndex"] == 1
    assert spec["parallelism"] == 2
    assert _do_not_retry(spec["podFailurePolicy"], "task") == {64, 65, 66}
    assert _do_not_retry(spec["podFailurePolicy"], "another-container") == set()


def test_the_notebook_container_reads_its_token_as_a_0400_file_never_from_its_environment(local, tmp_path):
    submission = model.Submission(name="lab", kind="notebook", backend="local", image=NOTEBOOK)
    space = tmp_path / "space"
    space.mkdir()
    token = "t" * 48
    plan = prepare.notebook(submission, local, space, token)
    notebook = podspec.translate(
        plan.statefulset["spec"]["template"], plan.objects(), files_dir=tmp_path / "files", claim_prefix="p", where="x"
    )
    assert token not in json.dumps(notebook.create)
    assert token not in json.dumps(notebook.host_config, default=str)
    (secret_file,) = [f for f in notebook.files if f.secret]
    assert secret_file.data.decode() == token
    assert secret_file.mode == 0o400
    assert notebook.environment()["JUPYTER_TOKEN_FILE"] == "/etc/primage/notebook-token/token"  # noqa: S105
    mounts = {m["target"]: m for m in notebook.host_config["mounts"]}
    assert mounts["/home/primage"] == {"type": "volume", "source": "p-lab-home", "target": "/home/primage",
                                       "read_only": False}  # fmt: skip
    assert notebook.claims == ["p-lab-home"]
    # Published on the loopback only, on a port the engine chooses.
    assert notebook.host_config["port_bindings"] == {"8888/tcp": ("127.0.0.1", None)}
    assert notebook.ports == {"http": 8888}


def test_pod_mode_is_refused_locally_naming_the_field(local, tmp_path):
    plan = htc_plan(local, space_with(tmp_path, "inputs/a.nii.gz"))
    values = {"htc_batch_image": IMAGE, "htc_batch_inputs": plan.inputs, "htc_batch_onedata_mode": "pod",
              "htc_batch_onedata_provider_host": "provider.example"}  # fmt: skip
    pod_mode = workloads.render("htc_batch", values, {"htc_batch_onedata_token": "secret-token"})
    job = pod_mode.of_kind("Job")[0].definition
    objects = {(m.kind, m.name): m.definition for m in pod_mode.manifests}
    template = job["spec"]["template"]
    with pytest.raises(PrimageError, match="ONECLIENT_ACCESS_TOKEN comes from secretKeyRef: the engine shows") as env:
        podspec.translate(template, objects, files_dir=tmp_path, claim_prefix="p", where="job")
    assert env.value.problem.field == "spec.template.spec.containers[task].env[ONECLIENT_ACCESS_TOKEN]"
    without_secret = json.loads(json.dumps(template))
    container = without_secret["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if "valueFrom" not in e]
    with pytest.raises(PrimageError, match=r"the extended resource primage\.eu/fuse") as refused:
        podspec.translate(without_secret, objects, files_dir=tmp_path, claim_prefix="p", where="job")
    assert refused.value.problem.field == "spec.template.spec.containers[task].resources"


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2), ("1Gi", 2**30), ("512Mi", 2**29), ("1.5G", 1.5e9), ("1e3", 1000), ("100k", 1e5)],
)
def test_kubernetes_quantities(text, value):
    assert podspec.quantity(text, "f") == pytest.approx(value)


def test_a_bad_quantity_names_its_field():
    with pytest.raises(PrimageError, match="'2 cores' is not a Kubernetes quantity") as error:
        podspec.quantity("2 cores", "spec.x.resources.limits.cpu")
    assert error.value.problem.field == "spec.x.resources.limits.cpu"


# --- the inputs of a space ------------------------------------------------------------------------


def test_inputs_are_files_and_series_folders_never_outputs_or_hidden(tmp_path):
    space = space_with(
        tmp_path,
        "inputs/case-1.nii.gz",
        "inputs/series-2/slice-1.dcm",
        "inputs/series-2/slice-2.dcm",
        "inputs/nested/deeper/x.nii",  # a folder holding a folder is no series
        "inputs/volumes/y.nii.gz",  # nor is a folder of NIfTI volumes
        "inputs/.partial.nii.gz",
        "outputs/liver/inputs/case-1/mask.nii.gz",
    )
    assert inputs.find(space, "inputs/*", "outputs/liver") == ["inputs/case-1.nii.gz", "inputs/series-2"]
    assert inputs.find(space, "**/*.nii*", "outputs/liver") == [
        "inputs/case-1.nii.gz",
        "inputs/nested/deeper/x.nii",
        "inputs/volumes/y.nii.gz",
    ]


def test_no_match_names_the_pattern_and_what_the_space_holds(tmp_path):
    space = space_with(tmp_path, "inputs/a.nii.gz", "notes.txt")
    with pytest.raises(PrimageError) as error:
        inputs.find(space, "*.nii.gz", "outputs/x")
    assert str(error.value) == (
        f"{space}: no file matches --files '*.nii.gz' in the space folder (it holds inputs/, notes.txt; "
        "the pattern is relative to it, e.g. --files 'inputs/*')"
    )


@pytest.mark.parametrize("pattern", ["/abs/*.nii", "../up/*.nii", ""])
def test_patterns_stay_inside_the_space(tmp_path, pattern):
    with pytest.raises(UsageError, match="must be a path relative to the space folder"):
        inputs.find(tmp_path, pattern, "outputs")


@pytest.mark.parametrize(
    ("given", "result"),
    [
        ("inputs/case-001.nii.gz", "outputs/x/inputs/case-001"),
        ("inputs/case-002.NII", "outputs/x/inputs/case-002"),
        ("inputs/series-003", "outputs/x/inputs/series-003"),
        ("a.nii.gz.nii", "outputs/x/a.nii.gz"),
    ],
)
def test_where_the_task_contract_puts_results(given, result):
    assert inputs.result_folder("outputs/x", given) == result


def test_a_result_counts_when_its_marker_is_newer_than_the_input(tmp_path):
    space = space_with(tmp_path, "inputs/a.nii.gz", "out/inputs/a/mask.nii.gz")
    assert not inputs.has_result(space, "inputs/a.nii.gz", "out/inputs/a")
    marker = space / "out/inputs/a/_SUCCESS"
    marker.write_text("{}")
    assert inputs.has_result(space, "inputs/a.nii.gz", "out/inputs/a")
    later = time.time() + 5
    os.utime(space / "inputs/a.nii.gz", (later, later))  # the input changed after the results
    assert not inputs.has_result(space, "inputs/a.nii.gz", "out/inputs/a")


def test_an_interrupted_tasks_files_go_and_a_complete_result_stays(tmp_path):
    space = space_with(tmp_path, "out/a/mask.nii.gz", "out/a/.overlay.png.tmp-1", "out/b/mask.nii.gz", "out/b/_SUCCESS")
    assert sorted(inputs.remove_incomplete(space, "out/a")) == [".overlay.png.tmp-1", "mask.nii.gz"]
    assert not (space / "out/a").exists()
    assert inputs.remove_incomplete(space, "out/b") == []
    assert (space / "out/b/mask.nii.gz").exists()


def test_space_errors_name_the_folder(tmp_path):
    with pytest.raises(PrimageError, match="the space folder does not exist"):
        inputs.check_space(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PrimageError, match="the space is not a folder"):
        inputs.check_space(tmp_path / "file")


# --- a submission made ready -----------------------------------------------------------------------


def test_ten_thousand_files_are_three_objects(local, tmp_path):
    names = [f"inputs/patient-{i:05d}.nii.gz" for i in range(10_000)]
    plan = htc_plan(local, space_with(tmp_path, *names))
    assert plan.workload.kinds() == {"Namespace": 1, "ConfigMap": 1, "Job": 1}
    assert plan.job["spec"]["completions"] == 10_000
    assert plan.tasks()[9999].output == "outputs/liver/inputs/patient-09999"


def test_a_batch_application_is_one_task(local, tmp_path):
    space = space_with(tmp_path, "inputs/a.nii.gz", "inputs/b.nii.gz")
    submission = model.Submission(name="one", kind="batch", backend="local", image=IMAGE, space=str(space),
                                  files="inputs/*", output="outputs/one")  # fmt: skip
    with pytest.raises(UsageError, match="a batch application runs one task, and 2 inputs match"):
        prepare.htc(submission, local, space)
    submission.files = "inputs/a.nii.gz"
    assert prepare.htc(submission, local, space).job["spec"]["completions"] == 1


@pytest.mark.parametrize("image", ["primage/segmentation", "primage/segmentation:latest", "a b:1"])
def test_images_must_be_pinned(image):
    with pytest.raises(UsageError, match="is not pinned"):
        prepare.check_pinned(image)


@pytest.mark.parametrize("name", ["Liver", "-liver", "liver_ct", "x" * 53, ""])
def test_names_are_rfc1123_labels(name):
    with pytest.raises(UsageError, match="is not an application name"):
        model.check_name(name)


def test_the_resume_command_is_the_submission(local, tmp_path):
    submission = model.Submission(name="liver", kind="htc", backend="local", image=IMAGE, space="/data/my space",
                                  files="inputs/*", output="outputs/liver", parallelism=3, retries=1)  # fmt: skip
    assert submission.command() == (
        f"primage htc submit liver --space '/data/my space' --files 'inputs/*' --parallel 3 --retries 1 --image {IMAGE}"
    )
    other = model.Submission.from_dict({**submission.as_dict(), "image": "other:1", "parallelism": 9})
    assert submission.differences(other) == ["image 'other:1'"]
    batch = model.Submission.from_dict({**submission.as_dict(), "kind": "batch", "files": "inputs/a.nii.gz"})
    assert batch.command() == (  # the batch command has no --parallel: one task
        f"primage batch submit liver --space '/data/my space' --files inputs/a.nii.gz --retries 1 --image {IMAGE}"
    )


def test_a_kubeconfig_is_for_the_kubernetes_backend_and_must_exist(tmp_path):
    with pytest.raises(UsageError, match="--kubeconfig is for --backend kubernetes"):
        backends.get("local", "kubeconfig.yaml")
    with pytest.raises(UsageError, match=f"no kubeconfig at {tmp_path}/none.yaml: give the cluster's with"):
        backends.get("kubernetes", str(tmp_path / "none.yaml"))


def test_a_malformed_kubeconfig_is_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nclusters: [\n")
    with pytest.raises(PrimageError, match="not a usable kubeconfig") as raised:
        _ = backends.get("kubernetes", str(broken)).client
    assert str(raised.value).startswith(f"{broken}: not a usable kubeconfig")


def test_an_unreachable_cluster_is_said(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: not-a-secret}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    with pytest.raises(PrimageError, match=rf"cannot reach the API server: the cluster at https://127.0.0.1:{port} "):
        _ = backends.get("kubernetes", str(config)).client


def test_the_job_status_indexes_and_image_names_as_the_cluster_gives_them():
    from primage.apps import kube

    assert kube.parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert kube.parse_indexes(None) == set()
    assert kube._normalized("primage/segmentation:0.1.0") == "docker.io/primage/segmentation:0.1.0"
    assert kube._normalized("debian:bookworm") == "docker.io/library/debian:bookworm"
    assert kube._normalized("registry.example.org:5000/a/b:1") == "registry.example.org:5000/a/b:1"


def test_onedata_on_the_local_backend_says_to_mount_it(local):
    with pytest.raises(UsageError, match=r"mount it on this machine with oneclient .* give that folder with --space"):
        local.refuse_onedata("MedicalImaging")


# --- the record ------------------------------------------------------------------------------------


def test_the_last_event_of_a_task_wins_and_a_torn_line_is_skipped(tmp_path):
    records = store.Store(tmp_path)
    submission = model.Submission(name="a", kind="htc", backend="local", image=IMAGE)
    records.save_submission(submission)
    task = model.Task(0, "inputs/x.nii", "outputs/a/inputs/x")
    records.record("a", task)
    task.state, task.exit_code = model.DONE, 0
    records.record("a", task)
    with open(tmp_path / "a" / "events.jsonl", "a") as events:
        events.write('{"index": 1, "inp')  # a line another process is writing
    assert records.tasks("a")["inputs/x.nii"].state == model.DONE
    assert records.names() == ["a"]


def test_a_lock_tells_another_process_the_application_runs(tmp_path):
    records = store.Store(tmp_path)
    assert records.runner_pid("a") is None
    with records.running("a"):
        assert records.runner_pid("a") == os.getpid()
        busy = f"application a is running in another process \\(pid {os.getpid()}\\)"
        with pytest.raises(PrimageError, match=busy), records.running("a"):
            pass
    assert records.runner_pid("a") is None


def test_private_files_are_never_readable_by_others(tmp_path):
    store.write_private(tmp_path / "token", "secret\n")
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600


# --- progress ------------------------------------------------------------------------------------------


def test_progress_on_a_terminal_redraws_one_line():
    out = io.StringIO()
    bar = Progress("liver", stream=out, interactive=True)
    bar.start(model.Counts(done=0, total=4))
    bar.update(model.Counts(done=2, failed=1, running=1, total=4), force=True)
    bar.finish(model.Counts(done=3, failed=1, total=4))
    text = out.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("\n")
    assert "\r[##########!!!!!-----] liver: 2/4 done  1 running  1 failed  0 left" in text
    assert "3/4 done  0 running  1 failed  0 left" in text


def test_progress_elsewhere_prints_periodic_lines():
    out = io.StringIO()
    bar = Progress("liver", stream=out, interactive=False, interval=3600)
    bar.start(model.Counts(total=10))
    bar.update(model.Counts(done=5, total=10))  # within the interval: nothing
    bar.finish(model.Counts(done=10, total=10))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("liver: 0/10 done  0 running  0 failed  10 left")
    assert "\r" not in out.getvalue()
    assert lines[1].startswith("liver: 10/10 done")
    assert lines[1].endswith("in all")


# --- the Onedata config ---------------------------------------------------------------------------------


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_onedata_config_gives_provider_and_token_per_space(tmp_path):
    config = write_config(
        tmp_path / "onedata.yaml",
        "provider_host: p1.example\ntoken: top-token\nspaces:\n  Other: {provider_host: p2.example, token: t2}\n",
    )
    access = onedata.load("MedicalImaging", config)
    assert (access.provider_host, access.token) == ("p1.example", "top-token")
    assert "top-token" not in repr(access)
    assert onedata.load("Other", config).provider_host == "p2.example"
    values, secrets = access.workload_values("htc_batch")
    assert values["htc_batch_onedata_mode"] == "pod"
    assert secrets == {"htc_batch_onedata_token": "top-token"}
    workload = workloads.render("htc_batch", {"htc_batch_image": IMAGE, "htc_batch_inputs": ["a"], **values}, secrets)
    assert workload.kinds()["Secret"] == 1


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("provider_host: p\ntoken: t\n", 0o644, "others may read or change it (mode 0644); chmod 600 it first"),
        ("provider_host: p\ntoken: t\n", 0o660, "others may read or change it (mode 0660)"),
        ("provider_host: p\n", 0o600, "no token for the space S"),
        ("provider_host: p\ntoken: t\nprovider: x\n", 0o600, "unknown key 'provider'"),
        ("- a list\n", 0o600, "expected a mapping with provider_host and token"),
    ],
    ids=["world-readable", "group-writable", "no-token", "unknown-key", "not-a-mapping"],
)
def test_onedata_config_errors(tmp_path, text, mode, message):
    config = write_config(tmp_path / "onedata.yaml", text, mode)
    with pytest.raises(PrimageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        onedata.load("S", config)


def test_a_missing_onedata_config_says_how_to_make_it(tmp_path):
    with pytest.raises(PrimageError, match=r"install -m 600 /dev/null FILE"):
        onedata.load("S", tmp_path / "none.yaml")


def test_a_notebook_on_the_kubernetes_backend_needs_a_space_every_node_has(tmp_path):
    from primage.apps.kube import KubernetesBackend
    from primage.errors import UsageError

    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(UsageError, match="needs --space DIR, a folder every node has at the same path"):
        KubernetesBackend(str(kubeconfig)).scratch_space("lab")
