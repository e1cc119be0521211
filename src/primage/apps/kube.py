"""The Kubernetes backend: the rendered Namespace, ConfigMap, Secrets and Indexed Job on a cluster.

The objects are the ones primage.workloads renders from the roles' templates, created as they are
through the official Kubernetes Python client against the cluster of a kubeconfig (--kubeconfig,
else $KUBECONFIG, else ~/.kube/config). The Job then runs the tasks and primage follows it: the
Job's status (completedIndexes, failedIndexes, active) feeds the same progress bar as the local
backend, and its pods give each task's attempts, exit code, times and error.

The record is on the cluster: the Job carries the application's labels and, in an annotation, the
submission, so every terminal with the kubeconfig sees the same state. The space is a folder of
the nodes (node mode, a hostPath): on the one-node test cluster the folder of this machine, on a
real cluster a Onedata space every node mounts at the same path. With --onedata SPACE the pods
mount the space themselves (pod mode, the image's Onedata variant, provider and token from the
private Onedata config): a pod of the same template lists the space for the inputs and the
complete results (primage.apps.kube_space), and removes the results of a deleted application.
--pod-overrides adds a site's nodeSelector, tolerations, volumes and environment to every pod
(primage.apps.overrides). Resubmitting the same
application finds its Job: a complete one runs nothing, a failed or interrupted one is made again,
and the task image skips every input whose results are complete (the task contract's _SUCCESS).

A notebook is the jupyter workload's StatefulSet (its record on it as on a Job), Service and
Secrets. It is published on a node port the cluster chooses, over HTTPS only: a CA made for the
notebook on this machine signs a certificate for the nodes' addresses, kept with the token in a
private folder of this machine's state (mode 0700, keys and token 0600); `stop` scales it to
zero, `start` back to one with the same token and certificate. Its home is an emptyDir (a cluster
may have no storage class): what is worth keeping belongs in the space.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import PrimageError, UsageError
from . import inputs, kube_space, model, overrides
from .backend import Backend, Output, RunOutcome, unknown_application
from .local import APP_LABEL, KIND_LABEL, describe_exit, prepare_output, remove_results
from .model import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, Application, Counts, Task

SUBMISSION_ANNOTATION = "eu.primage.submission"
INPUT_LIST_ANNOTATION = "primage.eu/input-list"  # the htc_batch role's: the Job's ConfigMap
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
TASK_CONTAINER = "task"
NOTEBOOK_CONTAINER = "notebook"
NOTEBOOK_READY_TIMEOUT = 300.0
NOTEBOOK_CERTIFICATE_DAYS = 825
POLL_SECONDS = 1.0
REQUEST_TIMEOUT = 30
GONE_TIMEOUT = 120.0
# A pod waiting for one of these never starts by itself: the run stops and says why.
STUCK_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}


def kubeconfig_path(given: str | None) -> Path:
    path = Path(given or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube" / "config")
    if not path.is_file():
        raise UsageError(
            f"no kubeconfig at {path}: give the cluster's with --kubeconfig FILE (the test cluster's: "
            "primage cluster kubeconfig)"
        )
    return path


def parse_indexes(text: str | None) -> set[int]:
    """A Job's completedIndexes or failedIndexes ("0-2,5") as a set of indexes."""
    found: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        first, _dash, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


def _iso(moment) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


class KubernetesBackend(Backend):
    name = "kubernetes"

    def __init__(self, kubeconfig: str | None):
        self.kubeconfig = kubeconfig_path(kubeconfig)
        self._client = None
        self._addresses: tuple[list[str], list[str]] | None = None
        self.onedata_image = ""  # the Onedata variant to run with --onedata (default: the image's -onedata)
        self.pod_overrides: dict = {}
        self.listed = None  # the listing of a Onedata space made by find_inputs

    # --- the client ----------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            from kubernetes import config

            try:
                self._client = config.new_client_from_config(config_file=str(self.kubeconfig))
            except Exception as error:  # the loader raises ConfigException, YAML, key and type errors alike
                raise PrimageError(f"not a usable kubeconfig: {error}", file=self.kubeconfig) from None
            self._client.configuration.retries = 1
            self.call("reach the API server", self.version_api().get_code)
        return self._client

    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.client)

    def batch(self):
        from kubernetes import client

        return client.BatchV1Api(self.client)

    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.client)

    def version_api(self):
        from kubernetes import client

        return client.VersionApi(self._client)

    def call(self, what: str, method, *args, missing_ok: bool = False, exists_ok: bool = False, **kwargs):
        """One API request; its failure becomes one line saying what was asked and what the cluster said."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return method(*args, **kwargs)
        except ApiException as error:
            if (missing_ok and error.status == 404) or (exists_ok and error.status == 409):
                return None
            raise PrimageError(f"cannot {what}: the API server says {error.status} {_reason(error)}") from None
        except HTTPError as error:
            host = self._client.configuration.host if self._client else "?"
            raise PrimageError(
                f"cannot {what}: the cluster at {host} does not answer ({type(error).__name__}); is it up?",
                file=self.kubeconfig,
            ) from None

    # --- submitting ----------------------------------------------------------------------------------

    def refuse_onedata(self, space: str, kind: str = "htc") -> None:
        """HTC and batch pods mount a Onedata space themselves (pod mode); a notebook sees the nodes' mount."""
        if kind == "notebook":
            raise UsageError(
                f"--onedata {space}: a notebook on the kubernetes backend sees a space the nodes mount: mount it on "
                "every node with oneclient (the cluster templates do) and give that folder with --space"
            )

    def space_values(self, application: str, space: Path | None, onedata=None) -> tuple[dict, dict]:
        if onedata is not None:
            values, secret_values = onedata.workload_values(application)
            if self.onedata_image:
                values[f"{application}_onedata_image"] = self.onedata_image
            return values, secret_values
        # Node mode: the hostPath of the space is this folder, the same path on every node.
        return ({f"{application}_space_mount_point": str(space)} if space else {}), {}

    def _jobs(self, name: str | None = None) -> list:
        selector = f"{APP_LABEL}={name}" if name else APP_LABEL
        found = self.call(
            "list the applications' Jobs", self.batch().list_job_for_all_namespaces, label_selector=selector
        )
        return sorted(found.items, key=lambda job: job.metadata.creation_timestamp)

    def find_inputs(self, space, onedata, pattern: str, output: str, probe=None) -> list[str]:
        """A Onedata space is listed by a pod of the application's own template (see kube_space)."""
        if onedata is None:
            return super().find_inputs(space, onedata, pattern, output)
        from .. import engine

        objects = [copy.deepcopy(m.definition) for m in probe().manifests]
        job = next(o for o in objects if o["kind"] == "Job")
        overrides.apply(job["spec"]["template"], self.pod_overrides)
        namespace, application = job["metadata"]["namespace"], job["metadata"]["labels"]["app.kubernetes.io/name"]
        existed = self.call("read the namespace", self.core().read_namespace, namespace, missing_ok=True)
        try:
            for body in objects:  # its namespace and the Secrets its pods read (the token), before the pod
                if body["kind"] in ("Namespace", "Secret"):
                    self._create(body)
            engine.progress(f"listing the Onedata space {onedata.space} through a pod of {_image_of(job)}")
            self.listed = kube_space.list_space(
                self, job["spec"]["template"], namespace, application, onedata.space, pattern, output
            )
            return self.listed.find(pattern, output)
        except PrimageError:
            if existed is None:  # made for this listing only: nothing of a failed submission stays
                self._delete_namespace(namespace, application)
            raise

    def submission(self, name: str) -> model.Submission | None:
        notebook = self._notebook(name)
        if notebook is not None:
            return _submission_of(notebook)
        jobs = self._jobs(name)
        return _submission_of(jobs[-1]) if jobs else None

    def scratch_space(self, name: str) -> Path:
        raise UsageError(
            f"notebook {name}: the kubernetes backend needs --space DIR, a folder every node has at the same path "
            "(where the nodes mount the Onedata space)"
        )

    def saved_token(self, name: str) -> str | None:
        path = self._notebook_folder(name) / "token"
        return path.read_text().strip() if path.exists() else None

    def check_image(self, image: str, default: bool) -> None:
        """The test cluster pulls nothing: say so before the pods wait for an image no node has."""
        nodes = self.call("list the nodes", self.core().list_node).items
        wanted = {image, _normalized(image)}
        if not any(wanted & set(names.names or []) for node in nodes for names in node.status.images or []):
            from .. import engine

            engine.progress(
                f"no node of the cluster has the image {image} yet: the kubelet pulls it (a cluster without a "
                f"registry, such as the test cluster, gets it with `primage cluster load {image}`)"
            )

    def run_htc(self, plan, progress) -> RunOutcome:
        submission = plan.submission
        objects = _with_record(plan)
        job = next(o for o in objects if o["kind"] == "Job")
        overrides.apply(job["spec"]["template"], self.pod_overrides)
        namespace, job_name = job["metadata"]["namespace"], job["metadata"]["name"]
        previous = self.submission(submission.name)
        if previous:
            submission.created = previous.created
            job["metadata"]["annotations"][SUBMISSION_ANNOTATION] = json.dumps(submission.as_dict())
        notes = self._replace_earlier_runs(submission.name, job_name)
        if plan.space is not None:
            user = job["spec"]["template"]["spec"].get("securityContext") or {}
            prepare_output(plan.space, submission.output, (user.get("runAsUser", 0), user.get("runAsGroup", 0)))
        reused = {t.index for t in plan.tasks() if self._has_result(plan, t)}
        existing = self.call("read the Job", self.batch().read_namespaced_job, job_name, namespace, missing_ok=True)
        if existing is None:
            for body in objects:
                self._create(body)
        elif _condition(existing, "Suspended") or (existing.spec.suspend or False):
            self.suspend(namespace, job_name, False)
            notes.append(f"the Job {namespace}/{job_name} of this submission was suspended: resumed")
        else:
            notes.append(f"the Job {namespace}/{job_name} of this submission exists: following it")
        follower = _Follower(self, plan, namespace, job_name, reused, progress)
        return follower.run(notes)

    def _has_result(self, plan, task: Task) -> bool:
        if plan.space is not None:
            return inputs.has_result(plan.space, task.input, task.output)
        return self.listed is not None and self.listed.has_result(task.input, task.output)

    def _create(self, body: dict) -> None:
        kind, meta = body["kind"], body["metadata"]
        what = f"create the {kind} {meta.get('namespace', '')}/{meta['name']}".replace(" /", " ")
        core, batch = self.core(), self.batch()
        creators = {
            "Namespace": (core.create_namespace, ()),
            "ConfigMap": (core.create_namespaced_config_map, (meta.get("namespace"),)),
            "Secret": (core.create_namespaced_secret, (meta.get("namespace"),)),
            "Job": (batch.create_namespaced_job, (meta.get("namespace"),)),
            "Service": (core.create_namespaced_service, (meta.get("namespace"),)),
            "StatefulSet": (self.apps().create_namespaced_stateful_set, (meta.get("namespace"),)),
            "PersistentVolumeClaim": (core.create_namespaced_persistent_volume_claim, (meta.get("namespace"),)),
        }
        if kind not in creators:
            raise PrimageError(f"the kubernetes backend does not create {kind} objects (the workload rendered one)")
        method, where = creators[kind]
        # The Namespace may be left from an earlier run; the ConfigMap's name is a digest of its data.
        body = kube_space.quantities_as_strings(body)
        created = self.call(what, method, *where, body, exists_ok=True)
        if created is None and kind == "Secret":  # a Secret is current: the latest submission's
            self.call(what.replace("create", "replace"), core.replace_namespaced_secret, meta["name"], *where, body)

    def _replace_earlier_runs(self, name: str, keep: str) -> list[str]:
        """Jobs of the same application: a finished one of this very submission is made again, so its
        failed and interrupted tasks run; one of other inputs (files added since) is replaced."""
        notes = []
        for job in self._jobs(name):
            if job.metadata.name == keep and not _finished(job):
                continue
            if job.metadata.name == keep and _condition(job, "Complete"):
                continue
            self._delete_job(job.metadata.namespace, job.metadata.name)
            notes.append(f"the earlier Job {job.metadata.namespace}/{job.metadata.name} removed; its tasks run again")
        return notes

    def suspend(self, namespace: str, job_name: str, suspended: bool) -> None:
        """A suspended Job deletes its running pods and keeps its status: the record of a stopped run."""
        what = f"{'suspend' if suspended else 'resume'} the Job {namespace}/{job_name}"
        self.call(what, self.batch().patch_namespaced_job, job_name, namespace, {"spec": {"suspend": suspended}})

    def _delete_job(self, namespace: str, job_name: str, wait: bool = True) -> None:
        """Delete the Job and its pods (SIGTERM, then the pods' grace period), waiting until they are gone."""
        self.call(
            f"delete the Job {namespace}/{job_name}",
            self.batch().delete_namespaced_job,
            job_name,
            namespace,
            propagation_policy="Foreground",
            missing_ok=True,
        )
        deadline = time.monotonic() + GONE_TIMEOUT
        while wait and time.monotonic() < deadline:
            gone = self.call("read the Job", self.batch().read_namespaced_job, job_name, namespace, missing_ok=True)
            if gone is None and not self._pods(namespace, job_name):
                return
            time.sleep(POLL_SECONDS)
        if wait:
            raise PrimageError(
                f"the Job {namespace}/{job_name} and its pods are still there after {GONE_TIMEOUT:.0f} s"
            )

    def _pods(self, namespace: str, job_name: str) -> list:
        listed = self.call(
            "list the Job's pods",
            self.core().list_namespaced_pod,
            namespace,
            label_selector=f"{JOB_NAME_LABEL}={job_name}",
        )
        return listed.items

    # --- following -----------------------------------------------------------------------------------

    def applications(self) -> list[Application]:
        apps = {}
        for job in self._jobs():  # oldest first: the newest Job of a name is its record
            submission = _submission_of(job)
            if submission is not None:
                counts = _job_counts(job)
                apps[submission.name] = Application(submission, _state(job, counts), counts, [], _iso(_updated(job)))
        for notebook in self._notebooks():
            submission = _submission_of(notebook)
            if submission is not None:
                apps[submission.name] = self._notebook_application(notebook)
        return sorted(apps.values(), key=lambda app: app.submission.created or "")

    def _job(self, name: str):
        jobs = self._jobs(name)
        if not jobs:
            raise unknown_application(name, [app.name for app in self.applications()])
        return jobs[-1]

    def application(self, name: str) -> Application:
        notebook = self._notebook(name)
        if notebook is not None:
            return self._notebook_application(notebook)
        job = self._job(name)
        listed = self._input_list(job)
        submission = _submission_of(job)
        pods = self._pods(job.metadata.namespace, job.metadata.name)
        tasks = _tasks(job, listed, submission.output, pods, set())
        self.explain_failures(tasks, pods, {})
        counts = Counts.of(tasks)
        state = _state(job, counts)
        note = "" if state in (model.APP_RUNNING, model.SUCCEEDED) else f"resume with: {submission.command()}"
        return Application(submission, state, counts, tasks, _iso(_updated(job)), note=note)

    def explain_failures(self, tasks: list[Task], pods: list, known: dict[str, str]) -> None:
        """A failed task's error ends with the last line of its log, as on the local backend."""
        names = {p.metadata.name: p for p in pods}
        for task in tasks:
            pod_name = task.log.rpartition("/")[2]
            if task.state != FAILED or pod_name not in names:
                continue
            if pod_name not in known:
                text = self.call(
                    "read a failed task's log",
                    self.core().read_namespaced_pod_log,
                    pod_name,
                    names[pod_name].metadata.namespace,
                    container=TASK_CONTAINER,
                    tail_lines=5,
                    missing_ok=True,
                )
                lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
                known[pod_name] = lines[-1][:300] if lines else ""
            if known[pod_name] and known[pod_name] not in task.error:
                task.error = f"{describe_exit(task.exit_code)}: {known[pod_name]}"

    def _input_list(self, job) -> list[str]:
        config_map = (job.metadata.annotations or {}).get(INPUT_LIST_ANNOTATION, "")
        found = self.call(
            f"read the input list {config_map}",
            self.core().read_namespaced_config_map,
            config_map,
            job.metadata.namespace,
            missing_ok=True,
        )
        if found is None:
            raise PrimageError(f"the Job {job.metadata.name} has lost its input list (the ConfigMap {config_map})")
        return (found.data or {}).get("inputs.txt", "").splitlines()

    def logs(self, name: str, task: str | None, follow: bool, write: Callable[[str], None]) -> None:
        notebook = self._notebook(name)
        if notebook is not None:
            pods = self._notebook_pods(notebook)
            if not pods:
                raise PrimageError(f"the notebook {name} is not running: start it with `primage notebook start {name}`")
            self._pod_log(pods[0], follow, write, container=NOTEBOOK_CONTAINER)
            return
        app = self.application(name)
        job = self._job(name)
        pods = self._pods(job.metadata.namespace, job.metadata.name)
        chosen = app.tasks if task is None else [_find_task(app, task)]
        for item in chosen:
            tried = sorted(
                (p for p in pods if p.metadata.labels.get(INDEX_LABEL) == str(item.index)),
                key=lambda p: p.metadata.creation_timestamp,
            )
            if not tried:
                if task is not None:
                    write(f"task {item.index} ({item.input}) has no log yet: it is {item.state}\n")
                continue
            pod = tried[-1]
            if task is None:
                write(f"==> task {item.index} {item.input} ({item.state}, {describe_exit(item.exit_code)}) <==\n")
            self._pod_log(pod, follow and task is not None, write)

    def _pod_log(self, pod, follow: bool, write, container: str = TASK_CONTAINER) -> None:
        response = self.call(
            f"read the log of the pod {pod.metadata.name}",
            self.core().read_namespaced_pod_log,
            pod.metadata.name,
            pod.metadata.namespace,
            container=container,
            follow=follow,
            _preload_content=False,
            _request_timeout=None if follow else REQUEST_TIMEOUT,
            missing_ok=True,
        )
        if response is None:
            return
        for chunk in response.stream(4096):
            write(chunk.decode(errors="replace"))

    def output(self, name: str) -> Output:
        app = self.application(name)
        submission = app.submission
        if submission.kind == "notebook":
            return Output(None, f"the space folder {submission.space} (on the nodes)", [])
        if submission.onedata:
            results = [(t.input, t.output) for t in app.tasks if t.state == DONE]
            where = f"{submission.output} in the Onedata space {submission.onedata} (mounted by the pods)"
            return Output(None, where, results)
        root = Path(submission.space) / submission.output
        results = [(t.input, str(Path(submission.space) / t.output)) for t in app.tasks if t.state == DONE]
        extra = [p for p in (root / "overview.png", root / "report.html") if p.exists()]
        return Output(root, f"{root} (on the nodes)", results, extra)

    def delete(self, name: str, keep_output: bool) -> list[str]:
        notebook = self._notebook(name)
        if notebook is not None:
            removed = self._delete_namespace(notebook.metadata.namespace, name)
            folder = self._notebook_folder(name)
            shutil.rmtree(folder, ignore_errors=True)
            return [*removed, f"its token and certificates ({folder})"]
        jobs = self._jobs(name)
        if not jobs:
            raise unknown_application(name, [app.name for app in self.applications()])
        submission = _submission_of(jobs[-1])
        listed = self._input_list(jobs[-1]) if not keep_output else []
        removed = []
        if listed and submission.onedata:  # through a pod of the Job's own template, while its token is there
            folders = [inputs.result_folder(submission.output, path) for path in listed]
            template = self.client.sanitize_for_serialization(jobs[-1].spec.template)
            namespace = jobs[-1].metadata.namespace
            count = kube_space.remove_results(self, template, namespace, name, submission.output, folders)
            removed.append(f"{count} result folder(s) in {submission.output} of the Onedata space {submission.onedata}")
        for job in jobs:
            self._delete_job(job.metadata.namespace, job.metadata.name)
            removed.append(f"Job {job.metadata.namespace}/{job.metadata.name} and its pods")
        for namespace in sorted({job.metadata.namespace for job in jobs}):
            removed += self._delete_namespace(namespace, name)
        if not keep_output and submission.space:
            removed += remove_results(submission, listed)
        return removed

    def _delete_namespace(self, namespace: str, name: str) -> list[str]:
        """The application's own Namespace (the workload's, labelled with its name) and all in it."""
        found = self.call("read the namespace", self.core().read_namespace, namespace, missing_ok=True)
        if found is None or (found.metadata.labels or {}).get("app.kubernetes.io/name") != name:
            return []
        self.call(f"delete the namespace {namespace}", self.core().delete_namespace, namespace, missing_ok=True)
        deadline = time.monotonic() + GONE_TIMEOUT
        while self.call("read the namespace", self.core().read_namespace, namespace, missing_ok=True) is not None:
            if time.monotonic() > deadline:
                raise PrimageError(f"the namespace {namespace} is still terminating after {GONE_TIMEOUT:.0f} s")
            time.sleep(POLL_SECONDS)
        return [f"namespace {namespace} (its input list and everything else in it)"]

    # --- notebooks -----------------------------------------------------------------------------------

    def _notebooks(self, name: str | None = None) -> list:
        selector = f"{APP_LABEL}={name}" if name else APP_LABEL
        found = self.call(
            "list the notebooks' StatefulSets",
            self.apps().list_stateful_set_for_all_namespaces,
            label_selector=f"{selector},{KIND_LABEL}=notebook",
        )
        return sorted(found.items, key=lambda item: item.metadata.creation_timestamp)

    def _notebook(self, name: str):
        found = self._notebooks(name)
        return found[-1] if found else None

    def _notebook_folder(self, name: str) -> Path:
        """Private state of one notebook of this cluster on this machine: its token and certificates."""
        from .. import paths

        server = self.client.configuration.host
        folder = paths.state_dir() / "kube-notebooks" / hashlib.sha256(server.encode()).hexdigest()[:12] / name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.parent.chmod(0o700)
        return folder

    def _node_addresses(self) -> tuple[list[str], list[str]]:
        """(host names, IP addresses) the nodes publish, the first IP being where URLs point; asked
        once per command, however many notebooks it lists."""
        if self._addresses is None:
            self._addresses = self._list_node_addresses()
        return self._addresses

    def _list_node_addresses(self) -> tuple[list[str], list[str]]:
        names, addresses = [], []
        for node in self.call("list the nodes", self.core().list_node).items:
            for address in node.status.addresses or []:
                try:
                    ipaddress.ip_address(address.address)
                except ValueError:
                    names.append(address.address)
                    continue
                order = 0 if address.type == "ExternalIP" else 1
                addresses.append((order, address.address))
        ordered = [a for _order, a in sorted(addresses, key=lambda pair: pair[0])]
        return sorted(set(names)), list(dict.fromkeys(ordered))

    def notebook_values(self, name: str) -> tuple[dict, dict]:
        from .. import tls

        folder = self._notebook_folder(name) / "tls"
        certificate, key = folder / "notebook.crt", folder / "notebook.key"
        if not (certificate.exists() and key.exists()):
            names, addresses = self._node_addresses()
            tls.server_certificates(
                folder,
                f"primage notebook CA {name}",
                [*names, "localhost"],
                [*addresses, "127.0.0.1"],
                prefix="notebook",
                days=NOTEBOOK_CERTIFICATE_DAYS,
            )
        values = {
            "jupyter_tls_source": "content",
            "jupyter_tls_certificate": certificate.read_text(),
            "jupyter_storage_size": "",  # an emptyDir: a cluster may have no storage class
            "jupyter_node_port": 0,  # the cluster chooses: several notebooks share the nodes
        }
        return values, {"jupyter_tls_private_key": key.read_text()}

    def start_notebook(self, plan, progress) -> Application:
        from .. import tls

        objects = _with_record(plan)
        body = next(o for o in objects if o["kind"] == "StatefulSet")
        namespace, sts_name = body["metadata"]["namespace"], body["metadata"]["name"]
        tls.write_private(self._notebook_folder(plan.submission.name) / "token", (plan.token + "\n").encode())
        existing = self.call(
            "read the StatefulSet", self.apps().read_namespaced_stateful_set, sts_name, namespace, missing_ok=True
        )
        if existing is None:
            for item in objects:
                self._create(item)
        elif (existing.spec.replicas or 0) == 0:
            for item in objects:
                if item["kind"] == "Secret":
                    self._create(item)  # the token and the certificate of this start
            self._scale(namespace, sts_name, 1)
        progress(f"notebook {plan.submission.name}: StatefulSet {namespace}/{sts_name}, waiting for its pod")
        deadline = time.monotonic() + NOTEBOOK_READY_TIMEOUT
        while True:
            current = self.apps().read_namespaced_stateful_set(sts_name, namespace, _request_timeout=REQUEST_TIMEOUT)
            if (current.status.ready_replicas or 0) >= 1:
                return self._notebook_application(current)
            stuck = _stuck(self._notebook_pods(current))
            if stuck:
                self._scale(namespace, sts_name, 0)
                raise PrimageError(f"the notebook {plan.submission.name} cannot start: {stuck}; it is stopped")
            if time.monotonic() > deadline:
                raise PrimageError(
                    f"the notebook {plan.submission.name} is not ready after {NOTEBOOK_READY_TIMEOUT:.0f} s; "
                    f"see primage apps logs {plan.submission.name} --backend kubernetes"
                )
            time.sleep(POLL_SECONDS)

    def _scale(self, namespace: str, name: str, replicas: int) -> None:
        self.call(
            f"scale the StatefulSet {namespace}/{name} to {replicas}",
            self.apps().patch_namespaced_stateful_set,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
        )

    def _notebook_pods(self, notebook, terminating: bool = False) -> list:
        """The notebook's pods; those being deleted only with terminating=True."""
        selector = ",".join(f"{k}={v}" for k, v in (notebook.spec.selector.match_labels or {}).items())
        listed = self.call(
            "list the notebook's pods",
            self.core().list_namespaced_pod,
            notebook.metadata.namespace,
            label_selector=selector,
        )
        return [p for p in listed.items if terminating or not p.metadata.deletion_timestamp]

    def _notebook_application(self, notebook) -> Application:
        submission = _submission_of(notebook)
        ready = (notebook.spec.replicas or 0) >= 1 and (notebook.status.ready_replicas or 0) >= 1
        url, note = "", f"start it with: {submission.command()}"
        if ready:
            service = self.call(
                "read the notebook's Service",
                self.core().read_namespaced_service,
                notebook.spec.service_name,
                notebook.metadata.namespace,
            )
            port = service.spec.ports[0].node_port
            _names, addresses = self._node_addresses()
            url = f"https://{addresses[0]}:{port}/lab" if port and addresses else ""
            ca = self._notebook_folder(submission.name) / "tls" / "ca.crt"
            note = f"HTTPS with a certificate of the notebook's own CA, {ca}: trust it in the browser (curl --cacert)"
        state = model.APP_RUNNING if ready else model.STOPPED
        updated = _iso(notebook.metadata.creation_timestamp)
        return Application(submission, state, Counts(total=1, running=int(ready)), [], updated, url=url, note=note)

    def notebook_url(self, name: str) -> tuple[str, Path]:
        app = self.application(name)
        if app.submission.kind != "notebook":
            raise UsageError(f"{name} is not a notebook but an application of kind {app.submission.kind}")
        if not app.url:
            raise PrimageError(f"the notebook {name} is not running: start it with `{app.submission.command()}`")
        token = self._notebook_folder(name) / "token"
        if not token.exists():  # started from another machine: the cluster's Secret is the record
            import base64

            notebook = self._notebook(name)
            secret_name, key = _token_secret(notebook)
            secret = self.call(
                "read the notebook's token",
                self.core().read_namespaced_secret,
                secret_name,
                notebook.metadata.namespace,
            )
            from .. import tls

            tls.write_private(token, base64.b64decode(secret.data[key]))
        return app.url, token

    def stop_notebook(self, name: str) -> Application:
        notebook = self._notebook(name)
        if notebook is None:
            app = self.application(name)  # an unknown name, or an application of another kind
            raise UsageError(
                f"{name} is not a notebook but an application of kind {app.submission.kind}: primage apps delete {name}"
            )
        self._scale(notebook.metadata.namespace, notebook.metadata.name, 0)
        deadline = time.monotonic() + GONE_TIMEOUT
        while self._notebook_pods(notebook, terminating=True):  # stopped means gone, not only going
            if time.monotonic() > deadline:
                raise PrimageError(f"the notebook {name}'s pod is still there after {GONE_TIMEOUT:.0f} s")
            time.sleep(POLL_SECONDS)
        return self._notebook_application(self._notebook(name))


class _Follower:
    """Follow a Job until it ends, feeding the progress bar; Ctrl-C deletes it cleanly."""

    def __init__(self, backend: KubernetesBackend, plan, namespace: str, job_name: str, reused: set[int], progress):
        self.backend, self.plan, self.progress = backend, plan, progress
        self.namespace, self.job_name, self.reused = namespace, job_name, reused
        self.reported: set[int] = set()
        self.errors: dict[str, str] = {}  # pod name: the last line of its log

    def _snapshot(self) -> tuple[object, list[Task], list]:
        job = self.backend.call(
            "read the Job", self.backend.batch().read_namespaced_job_status, self.job_name, self.namespace
        )
        pods = self.backend._pods(self.namespace, self.job_name)
        tasks = _tasks(job, self.plan.inputs, self.plan.submission.output, pods, self.reused)
        self.backend.explain_failures(tasks, pods, self.errors)
        return job, tasks, pods

    def run(self, notes: list[str]) -> RunOutcome:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return self._follow(notes)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _follow(self, notes: list[str]) -> RunOutcome:
        tasks: list[Task] = []
        try:
            job, tasks, pods = self._snapshot()
            self.progress.start(Counts.of(tasks))
            while True:
                self.progress.update(Counts.of(tasks))
                self._report_failures(tasks)
                stuck = _stuck(pods)
                if stuck:
                    self.backend.suspend(self.namespace, self.job_name, True)  # its pods go, its record stays
                    return self._outcome(tasks, notes, stopped_because=stuck)
                if _finished(job):
                    break
                time.sleep(POLL_SECONDS)
                job, tasks, pods = self._snapshot()
        except KeyboardInterrupt:
            return self._interrupt(tasks, notes)
        self.progress.finish(Counts.of(tasks))
        return self._outcome(tasks, notes)

    def _report_failures(self, tasks: list[Task]) -> None:
        for task in tasks:
            if task.state == FAILED and task.index not in self.reported:
                self.reported.add(task.index)
                self.progress.note(f"task {task.index} ({task.input}) failed: {task.error}")

    def _interrupt(self, tasks: list[Task], notes: list[str]) -> RunOutcome:
        self.progress.note(f"stopping: deleting the Job {self.namespace}/{self.job_name} and its pods")
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.backend._delete_job(self.namespace, self.job_name)
        for task in tasks:
            if task.state in (RUNNING, PENDING):
                if self.plan.space is not None:
                    inputs.remove_incomplete(self.plan.space, task.output)
                task.state = INTERRUPTED if task.state == RUNNING else PENDING
        app = self._application(tasks, running=False)
        return RunOutcome(app, interrupted=True, notes=notes)

    def _outcome(self, tasks: list[Task], notes: list[str], stopped_because: str = "") -> RunOutcome:
        self.progress.finish(Counts.of(tasks))
        return RunOutcome(self._application(tasks, running=False), stopped_because=stopped_because, notes=notes)

    def _application(self, tasks: list[Task], running: bool) -> Application:
        submission = self.plan.submission
        counts = Counts.of(tasks)
        state = model.state_of(counts, running)
        note = "" if state in (model.APP_RUNNING, model.SUCCEEDED) else f"resume with: {submission.command()}"
        return Application(submission, state, counts, tasks, model.now(), note=note)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _reason(error) -> str:
    try:
        return json.loads(error.body).get("message") or error.reason
    except (TypeError, ValueError, AttributeError):
        return str(error.reason)


def _normalized(image: str) -> str:
    """An image reference as containerd lists it (docker.io/library/...)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def _with_record(plan) -> list[dict]:
    """The rendered objects, the Job carrying the application's record (labels, the submission)."""
    objects = [copy.deepcopy(m.definition) for m in plan.workload.manifests]
    for body in objects:
        if body["kind"] in ("Job", "StatefulSet"):
            meta = body["metadata"]
            meta.setdefault("labels", {}).update({APP_LABEL: plan.submission.name, KIND_LABEL: plan.submission.kind})
            meta.setdefault("annotations", {})[SUBMISSION_ANNOTATION] = json.dumps(plan.submission.as_dict())
    order = {"Namespace": 0, "Secret": 1, "ConfigMap": 2}  # what the pods mount exists before them
    return sorted(objects, key=lambda body: order.get(body["kind"], 3))


def _image_of(body: dict) -> str:
    return body["spec"]["template"]["spec"]["containers"][0]["image"]


def _submission_of(job) -> model.Submission | None:
    text = (job.metadata.annotations or {}).get(SUBMISSION_ANNOTATION)
    try:
        return model.Submission.from_dict(json.loads(text)) if text else None
    except (TypeError, ValueError):
        return None


def _condition(job, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (job.status.conditions or []) if job.status)


def _finished(job) -> bool:
    return _condition(job, "Complete") or _condition(job, "Failed")


def _updated(job):
    times = [c.last_transition_time for c in (job.status.conditions or []) if c.last_transition_time]
    return max(times) if times else job.status.start_time or job.metadata.creation_timestamp


def _job_counts(job) -> Counts:
    status = job.status
    done = len(parse_indexes(status.completed_indexes))
    failed = len(parse_indexes(status.failed_indexes))
    running = 0 if _finished(job) else min(status.active or 0, job.spec.completions - done - failed)
    return Counts(done=done, failed=failed, running=running, total=job.spec.completions or 0)


def _state(job, counts: Counts) -> str:
    if job.spec.suspend and not _finished(job):
        return model.STOPPED
    if not _finished(job):
        return model.APP_RUNNING
    return model.state_of(counts, running=False)


def _tasks(job, listed: list[str], output: str, pods: list, reused: set[int]) -> list[Task]:
    """Each index's task from the Job's status and the latest of its pods."""
    done = parse_indexes(job.status.completed_indexes)
    failed = parse_indexes(job.status.failed_indexes)
    by_index: dict[int, list] = {}
    for pod in pods:
        index = pod.metadata.labels.get(INDEX_LABEL)
        if index is not None and index.isdigit():
            by_index.setdefault(int(index), []).append(pod)
    tasks = []
    for index, path in enumerate(listed):
        task = Task(index, path, inputs.result_folder(output, path), reused=index in reused)
        tried = sorted(by_index.get(index, []), key=lambda p: p.metadata.creation_timestamp)
        task.attempts = len(tried)
        if tried:
            _from_pod(task, tried[-1])
        if index in done:
            task.state = DONE
        elif index in failed:
            task.state = FAILED
            task.error = task.error or describe_exit(task.exit_code)
        elif tried and tried[-1].status.phase in ("Pending", "Running") and not tried[-1].metadata.deletion_timestamp:
            task.state = RUNNING
        tasks.append(task)
    return tasks


def _from_pod(task: Task, pod) -> None:
    statuses = [s for s in pod.status.container_statuses or [] if s.name == TASK_CONTAINER]
    state = statuses[0].state if statuses else None
    ended = state.terminated if state else None
    running = state.running if state else None
    if ended:
        task.exit_code = ended.exit_code
        task.started, task.finished = _iso(ended.started_at), _iso(ended.finished_at)
        if ended.started_at and ended.finished_at:
            task.seconds = round((ended.finished_at - ended.started_at).total_seconds(), 1)
        if ended.exit_code:
            detail = (ended.message or "").strip().splitlines()
            task.error = describe_exit(ended.exit_code, ended.reason == "OOMKilled") + (
                f": {detail[-1][:300]}" if detail else ""
            )
    elif running:
        task.started = _iso(running.started_at)
    task.log = f"pod {pod.metadata.namespace}/{pod.metadata.name}"


def _stuck(pods: list) -> str:
    for pod in pods:
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason in STUCK_REASONS:
                index = pod.metadata.labels.get(INDEX_LABEL, "?")
                hint = (
                    "; node mode mounts the space with HostToContainer propagation: make the folder a shared "
                    "mount on the nodes (e.g. `mount --bind DIR DIR && mount --make-shared DIR`)"
                    if "not a shared or slave mount" in (waiting.message or "")
                    else ""
                )
                return (
                    f"task {index}'s pod {pod.metadata.name} cannot start: {waiting.reason}"
                    f"{': ' + waiting.message if waiting.message else ''}{hint}"
                )
    return ""


def _find_task(app: Application, which: str) -> Task:
    for task in app.tasks:
        if which in (str(task.index), task.input):
            return task
    raise UsageError(
        f"application {app.name} has no task '{which}': give its index (0 to {len(app.tasks) - 1}) or its "
        "input as `primage apps show` lists them"
    )


def _token_secret(notebook) -> tuple[str, str]:
    """(Secret name, key) of the notebook's token, read from its StatefulSet as the role rendered it:
    the Secret volume mounted where the container's JUPYTER_TOKEN_FILE lies."""
    spec = notebook.spec.template.spec
    for container in spec.containers:
        token_file = next((e.value for e in container.env or [] if e.name == "JUPYTER_TOKEN_FILE"), None)
        if not token_file:
            continue
        folder, key = token_file.rsplit("/", 1)
        mount = next((m for m in container.volume_mounts or [] if m.mount_path.rstrip("/") == folder), None)
        volume = next((v for v in spec.volumes or [] if mount and v.name == mount.name), None)
        if volume is not None and volume.secret is not None:
            return volume.secret.secret_name, key
    raise PrimageError(
        f"the notebook {notebook.metadata.name} reads its token from no Secret volume (JUPYTER_TOKEN_FILE): "
        "its StatefulSet was not made by primage"
    )
