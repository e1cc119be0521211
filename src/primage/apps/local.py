"""The local backend: the rendered workload's container on the Docker engine, N tasks at a time.

Each task is the Job's pod template made a container (`podspec.translate`): the same image,
environment, user, limits and mounts, the space folder bind-mounted where the hostPath space
volume goes, the input-list ConfigMap written as a file where the ConfigMap goes, and
JOB_COMPLETION_INDEX set as Kubernetes sets it in an Indexed Job. Retries follow the Job's
backoffLimitPerIndex and its podFailurePolicy (the exit codes that fail an index at once).

The record: running containers carry labels (application, task, input, attempt, and the pod's
own labels); the state folder (`store.Store`) keeps the submission, each task's events and
logs. Containers are removed when their task ends, so the engine keeps nothing of a finished run
and a Ctrl-C leaves nothing behind; a run killed outright (SIGKILL, a reboot) leaves containers
that the next submission of the same application stops and removes before going on.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .. import engine, paths
from ..errors import PrimageError, UsageError
from . import inputs, model, podspec
from .backend import Backend, Output, RunOutcome, unknown_application
from .model import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, Application, Counts, Task
from .store import Store, write_private

LABEL = "eu.primage"
CHECKOUT_LABEL, APP_LABEL, KIND_LABEL = f"{LABEL}.checkout", f"{LABEL}.app", f"{LABEL}.kind"
TASK_LABEL, INPUT_LABEL, ATTEMPT_LABEL = f"{LABEL}.task", f"{LABEL}.input", f"{LABEL}.attempt"
# What each exit code of the task contract means, for the messages.
EXIT_MEANINGS = {
    64: "usage or configuration error",
    65: "bad input",
    66: "missing input",
    70: "internal error",
    73: "output not writable",
    125: "the engine could not run the container",
    126: "the command cannot be executed",
    127: "the command was not found",
    137: "killed",
    143: "stopped by SIGTERM",
}
# Exit codes of the task contract that speak of one task (its input, its output, a crash on it),
# not of the image: they never stop a run. Exit 0 without results, 64 (the configuration every
# task shares) and codes outside the contract (command not found...) speak of the image.
TASK_VERDICTS = (65, 66, 70, 73, 143)
# A broken image rather than bad inputs: the first attempts of a run all fail, quickly.
BROKEN_IMAGE_ATTEMPTS = 3
BROKEN_IMAGE_SECONDS = 10.0
NOTEBOOK_READY_TIMEOUT = 180.0
INPUTS_FILE = "inputs.txt"


def _client():
    import docker

    try:
        return docker.from_env(timeout=120).api
    except docker.errors.DockerException as error:
        raise PrimageError(f"the Docker engine does not answer ({error}); start it (scripts/setup.sh does)") from None


def state_id() -> str:
    """The state folder that records this checkout's applications, which labels their containers: two
    clones, or two caches of one clone (a test's PRIMAGE_CACHE), never mix. paths.checkout_id() names the
    checkout alone, so a test's containers would pass for the user's."""
    state = paths.state_dir()
    return f"{state.name}-{hashlib.sha256(str(state).encode()).hexdigest()[:6]}"


def describe_exit(code: int | None, oom: bool = False) -> str:
    if code is None:
        return "no exit code"
    if oom:
        return f"exit {code} (killed: out of memory)"
    meaning = EXIT_MEANINGS.get(code)
    return f"exit {code} ({meaning})" if meaning else f"exit {code}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class LocalBackend(Backend):
    name = "local"

    def __init__(self, store: Store | None = None):
        self.store = store or Store()
        self.checkout = state_id()
        digest = self.checkout.rsplit("-", 1)[-1][:6]
        self.prefix = f"primage-{digest}"  # container and volume names on the shared engine
        self._api = None

    @property
    def api(self):
        if self._api is None:
            engine.ensure_docker()
            self._api = _client()
        return self._api

    def _labels(self, submission: model.Submission) -> dict[str, str]:
        return {CHECKOUT_LABEL: self.checkout, APP_LABEL: submission.name, KIND_LABEL: submission.kind}

    def _containers(self, name: str | None = None, api=None) -> list[dict]:
        filters = [f"{CHECKOUT_LABEL}={self.checkout}"] + ([f"{APP_LABEL}={name}"] if name else [])
        return (api or self.api).containers(all=True, filters={"label": filters})

    # --- submitting ------------------------------------------------------------------------------

    def refuse_onedata(self, space: str, kind: str = "htc") -> None:
        raise UsageError(
            f"--onedata {space}: the local backend has no cluster whose nodes or pods mount a Onedata space; "
            f"mount it on this machine with oneclient (e.g. `oneclient /mnt/onedata`: the space is then the folder "
            f"/mnt/onedata/{space}) and give that folder with --space, or use --backend kubernetes"
        )

    def space_values(self, application: str, space: Path | None, onedata=None) -> tuple[dict, dict]:
        if onedata is not None:
            self.refuse_onedata(onedata.space)
        if space is None:
            return {}, {}
        # Node mode: the hostPath of the space is this folder, bind-mounted at the pods' mount path.
        return {f"{application}_space_mount_point": str(space)}, {}

    def submission(self, name: str) -> model.Submission | None:
        return self.store.submission(name)

    def scratch_space(self, name: str) -> Path:
        folder = self.store.folder(name) / "space"
        folder.mkdir(parents=True, exist_ok=True, mode=0o755)
        return folder

    def check_image(self, image: str, default: bool) -> None:
        import docker

        try:
            self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            how = (
                "build it with `primage images build segmentation`"
                if default
                else "the local backend pulls nothing: build it (primage images build) or `docker load` it"
            )
            raise PrimageError(f"unknown image {image}: it is not on the local Docker engine; {how}") from None

    def _recover(self, name: str, space: Path | None, notes: list[str]) -> None:
        """Containers a killed run left (SIGKILL, a reboot): stopped, removed, their partial results too."""
        leftovers = self._containers(name)
        for container in leftovers:
            with contextlib.suppress(Exception):
                self.api.stop(container["Id"], timeout=podspec.DEFAULT_GRACE_SECONDS)
            with contextlib.suppress(Exception):
                self.api.remove_container(container["Id"], v=True, force=True)
        stale = [t for t in self.store.tasks(name).values() if t.state == RUNNING]
        for task in stale:
            if space is not None:
                inputs.remove_incomplete(space, task.output)
            task.state, task.error = INTERRUPTED, "the run was killed"
            self.store.record(name, task)
        if leftovers or stale:
            notes.append(
                f"an earlier run of {name} was killed: {len(leftovers)} of its container(s) stopped and removed, "
                f"{len(stale)} task(s) it left unfinished run again unless their results are complete"
            )

    def run_htc(self, plan, progress) -> RunOutcome:
        submission = plan.submission
        name = submission.name
        notes: list[str] = []
        with self.store.running(name):
            self._recover(name, plan.space, notes)
            previous = self.store.submission(name)
            if previous:
                submission.created = previous.created
            self.store.save_submission(submission)
            (self.store.folder(name) / INPUTS_FILE).write_text("".join(f"{p}\n" for p in plan.inputs))
            container = podspec.translate(
                plan.job["spec"]["template"],
                plan.objects(),
                files_dir=self.store.files_dir(name),
                claim_prefix=self.prefix,
                where=f"the Job {plan.job['metadata']['name']} rendered from ansible/roles/htc_batch",
            )
            podspec.write_files(container)
            prepare_output(plan.space, submission.output, container.user)
            tasks = self._initial_tasks(plan)
            self._save_summary(self._application(name, tasks, running=True))
            runner = _Runner(self, plan, container, tasks, progress)
            runner.run()
            app = self._application(name, tasks, running=False)
            self._save_summary(app)
        return RunOutcome(app, runner.interrupted, runner.stopped_because, notes)

    def _initial_tasks(self, plan) -> list[Task]:
        """Each input's task: done when its complete results exist (from this or an earlier run)."""
        recorded = self.store.tasks(plan.submission.name)
        tasks = []
        for task in plan.tasks():
            if inputs.has_result(plan.space, task.input, task.output):
                earlier = recorded.get(task.input)
                if earlier and earlier.state == DONE:
                    task = earlier
                    task.index = len(tasks)
                else:
                    task.state, task.reused = DONE, True
                    self.store.record(plan.submission.name, task)
            tasks.append(task)
        return tasks

    def _save_summary(self, app: Application) -> None:
        self.store.save_summary(app.name, {"state": app.state, "counts": app.counts.as_dict(), "updated": model.now()})

    # --- following ---------------------------------------------------------------------------------

    def _application(self, name: str, tasks: list[Task], running: bool) -> Application:
        submission = self.store.submission(name)
        counts = Counts.of(tasks)
        state = model.state_of(counts, running)
        note = "" if state in (model.APP_RUNNING, model.SUCCEEDED) else f"resume with: {submission.command()}"
        return Application(submission, state, counts, tasks, model.now(), note=note)

    def _tasks(self, name: str, running: bool) -> list[Task]:
        recorded = self.store.tasks(name)
        submission = self.store.submission(name)
        try:
            listed = (self.store.folder(name) / INPUTS_FILE).read_text().splitlines()
        except FileNotFoundError:
            listed = []
        tasks = []
        for index, path in enumerate(listed):
            task = recorded.get(path) or Task(index, path, inputs.result_folder(submission.output, path))
            task.index = index
            if task.state == RUNNING and not running:
                task.state = INTERRUPTED
            tasks.append(task)
        return tasks

    def applications(self) -> list[Application]:
        names = self.store.names()
        submissions = {name: self.store.submission(name) for name in names}
        has_notebooks = any(s.kind == "notebook" for s in submissions.values())
        notebooks = self._notebook_containers() if has_notebooks else {}
        apps = []
        for name, submission in submissions.items():
            if submission.kind == "notebook":
                apps.append(self._notebook_application(submission, notebooks.get(name)))
                continue
            summary = self.store.summary(name)
            running = self.store.runner_pid(name) is not None
            raw = summary.get("counts") or {}
            counts = Counts(raw.get("done", 0), raw.get("failed", 0), raw.get("running", 0), raw.get("total", 0))
            if not running:
                counts.running = 0
            apps.append(Application(submission, model.state_of(counts, running), counts, [], summary.get("updated")))
        return apps

    def _notebook_containers(self) -> dict[str, dict]:
        filters = {"label": [f"{CHECKOUT_LABEL}={self.checkout}", f"{KIND_LABEL}=notebook"]}
        try:
            found = _list_containers(filters) if self._api is None else self.api.containers(all=True, filters=filters)
        except Exception:  # no engine: the records still list, without the notebooks' live state
            return {}
        return {c["Labels"].get(APP_LABEL): c for c in found}

    def application(self, name: str) -> Application:
        submission = self.store.submission(name)
        if submission is None:
            raise unknown_application(name, self.store.names())
        if submission.kind == "notebook":
            return self._notebook_application(submission, self._notebook_containers().get(name))
        running = self.store.runner_pid(name) is not None
        return self._application(name, self._tasks(name, running), running)

    def _find_task(self, app: Application, which: str) -> Task:
        for task in app.tasks:
            if which in (str(task.index), task.input):
                return task
        raise UsageError(
            f"application {app.name} has no task '{which}': give its index (0 to {len(app.tasks) - 1}) or its "
            "input as `primage apps show` lists them"
        )

    def logs(self, name: str, task: str | None, follow: bool, write: Callable[[str], None]) -> None:
        app = self.application(name)
        if app.submission.kind == "notebook":
            self._container_logs(self._notebook_container(name), follow, write)
            return
        if task is not None:
            self._task_logs(app, self._find_task(app, task), follow, write)
            return
        shown: set[tuple[str, int]] = set()
        while True:
            for item in app.tasks:
                if item.state in (DONE, FAILED, INTERRUPTED) and item.log and (item.input, item.attempts) not in shown:
                    shown.add((item.input, item.attempts))
                    write(f"==> task {item.index} {item.input} ({item.state}, {describe_exit(item.exit_code)}) <==\n")
                    write(_read(Path(item.log)))
            if not follow or app.state != model.APP_RUNNING:
                return
            time.sleep(0.5)
            app = self.application(name)

    def _task_logs(self, app: Application, task: Task, follow: bool, write) -> None:
        while task.state == RUNNING:
            containers = [c for c in self._containers(app.name) if c["Labels"].get(TASK_LABEL) == str(task.index)]
            if containers:
                self._container_logs(containers[0]["Id"], follow, write)
                return
            if not follow:
                break
            # Between its record and its container (starting, or ended and not yet recorded): wait for either.
            time.sleep(0.2)
            task = self._find_task(self.application(app.name), str(task.index))
        if not task.log:
            write(f"task {task.index} ({task.input}) has no log yet: it is {task.state}\n")
            return
        write(_read(Path(task.log)))

    def _container_logs(self, container: str, follow: bool, write) -> None:
        import docker

        try:
            if not follow:
                write(self.api.logs(container, stdout=True, stderr=True).decode(errors="replace"))
                return
            for chunk in self.api.logs(container, stdout=True, stderr=True, stream=True, follow=True):
                write(chunk.decode(errors="replace"))
        except docker.errors.NotFound:
            return  # it ended meanwhile; its log is in the state folder

    def output(self, name: str) -> Output:
        app = self.application(name)
        submission = app.submission
        if submission.kind == "notebook":
            return Output(None, f"the space folder {submission.space} and the home volume", [])
        root = Path(submission.space) / submission.output
        results = [(t.input, str(Path(submission.space) / t.output)) for t in app.tasks if t.state == DONE]
        extra = [p for p in (root / "overview.png", root / "report.html") if p.exists()]
        return Output(root, str(root), results, extra)

    def delete(self, name: str, keep_output: bool) -> list[str]:
        submission = self.store.submission(name)
        if submission is None:
            raise unknown_application(name, self.store.names())
        removed = []
        pid = self.store.runner_pid(name)
        if pid:
            removed.append(self._stop_runner(name, pid))
        for container in self._containers(name):
            with contextlib.suppress(Exception):
                self.api.stop(container["Id"], timeout=podspec.DEFAULT_GRACE_SECONDS)
            self.api.remove_container(container["Id"], v=True, force=True)
            removed.append(f"container {container['Names'][0].lstrip('/')}")
        if submission.kind == "notebook":
            if not keep_output:
                removed += self._remove_claims(name)
        elif not keep_output:
            listed = self.store.folder(name) / INPUTS_FILE
            removed += remove_results(submission, listed.read_text().splitlines() if listed.exists() else [])
        self.store.remove(name)
        removed.append(f"record {paths.relative(self.store.folder(name))}")
        return removed

    def _stop_runner(self, name: str, pid: int) -> str:
        """The process running it (another terminal) stops as on Ctrl-C: no container, no partial result."""
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + podspec.DEFAULT_GRACE_SECONDS + 15
        while self.store.runner_pid(name) is not None:
            if time.monotonic() > deadline:
                raise PrimageError(f"the process running {name} (pid {pid}) did not stop; stop it with Ctrl-C there")
            time.sleep(0.2)
        return f"its run (pid {pid}), stopped"

    # --- notebooks ----------------------------------------------------------------------------------

    def notebook_values(self, name: str) -> tuple[dict, dict]:
        from .prepare import NOTEBOOK_HOME_SIZE

        # The home is a claim, kept as an engine volume across restarts. The port is published on
        # 127.0.0.1 only, where nothing crosses a network: plain HTTP behind the token, and no
        # certificate for a browser to distrust.
        return {"jupyter_storage_size": NOTEBOOK_HOME_SIZE, "jupyter_tls_enabled": False}, {}

    def saved_token(self, name: str) -> str | None:
        path = self.store.folder(name) / "token"
        return path.read_text().strip() if path.exists() else None

    def _notebook_container(self, name: str) -> str:
        found = [c for c in self._containers(name) if c["Labels"].get(KIND_LABEL) == "notebook"]
        if not found:
            raise PrimageError(f"the notebook {name} is not running: start it with `primage notebook start {name}`")
        return found[0]["Id"]

    def _notebook_application(self, submission: model.Submission, container: dict | None) -> Application:
        running = bool(container) and container.get("State") == "running"
        url = self._url(container) if running else ""
        state = model.APP_RUNNING if running else model.STOPPED
        note = "" if running else f"start it with: {submission.command()}"
        return Application(submission, state, Counts(total=1, running=int(running)), [], None, url=url, note=note)

    @staticmethod
    def _url(container: dict) -> str:
        for port in container.get("Ports") or []:
            if port.get("PublicPort") and port.get("IP") in ("127.0.0.1", "0.0.0.0"):  # noqa: S104
                return f"http://127.0.0.1:{port['PublicPort']}/lab"
        return ""

    def start_notebook(self, plan, progress) -> Application:
        submission = plan.submission
        name = submission.name
        existing = [c for c in self._containers(name) if c["Labels"].get(KIND_LABEL) == "notebook"]
        if existing and existing[0]["State"] == "running":
            return self._notebook_application(self.store.submission(name) or submission, existing[0])
        for container in existing:
            self.api.remove_container(container["Id"], v=True, force=True)
        self.store.save_submission(submission)
        write_private(self.store.folder(name) / "token", plan.token + "\n")
        statefulset = plan.statefulset
        container = podspec.translate(
            statefulset["spec"]["template"],
            plan.objects(),
            files_dir=self.store.files_dir(name),
            claim_prefix=self.prefix,
            where=f"the StatefulSet {statefulset['metadata']['name']} rendered from ansible/roles/jupyter",
        )
        podspec.write_files(container)
        scratch = self.store.folder(name) / "space"
        if plan.space == scratch and container.user and os.geteuid() == 0:
            os.chown(scratch, *container.user)  # a space of its own: the notebook's user writes there
        for claim in container.claims:
            self._ensure_volume(claim, submission)
        created = self._create(container, f"{self.prefix}-nb-{name}", self._labels(submission), restart=True)
        self.api.start(created)
        progress(f"notebook {name}: container started, waiting for it to answer")
        probe = statefulset["spec"]["template"]["spec"]["containers"][0].get("readinessProbe") or {}
        self._wait_ready(created, container, probe)
        return self._notebook_application(submission, self._containers(name)[0])

    def _ensure_volume(self, volume: str, submission: model.Submission) -> None:
        import docker

        try:
            self.api.inspect_volume(volume)
        except docker.errors.NotFound:
            self.api.create_volume(volume, labels=self._labels(submission))

    def _remove_claims(self, name: str) -> list[str]:
        import docker

        removed = []
        for volume in (self.api.volumes(filters={"label": f"{APP_LABEL}={name}"}) or {}).get("Volumes") or []:
            if (volume.get("Labels") or {}).get(CHECKOUT_LABEL) != self.checkout:
                continue
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_volume(volume["Name"], force=True)
                removed.append(f"volume {volume['Name']}")
        return removed

    def _create(self, container: podspec.ContainerPlan, name: str, labels: dict, restart=False, env=None, api=None):
        api = api or self.api
        host_config = dict(container.host_config)
        mounts = [_mount(m) for m in host_config.pop("mounts")]
        if restart:  # a StatefulSet's pod comes back after a crash or a restart of the engine
            host_config["restart_policy"] = {"Name": "unless-stopped"}
        create = dict(container.create)
        create["labels"] = {**create.get("labels", {}), **labels}
        create["environment"] = {**create.get("environment", {}), **(env or {})}
        config = api.create_host_config(mounts=mounts, **host_config)
        try:
            return api.create_container(name=name, host_config=config, **create)["Id"]
        except Exception as error:
            if "Conflict" not in str(error):
                raise
        # A container of that name that a killed run left behind.
        api.remove_container(name, v=True, force=True)
        return api.create_container(name=name, host_config=config, **create)["Id"]

    def _wait_ready(self, container_id: str, container: podspec.ContainerPlan, probe: dict) -> None:
        http = probe.get("httpGet") or {"path": "/", "port": next(iter(container.ports), None)}
        port = http.get("port")
        target = container.ports.get(str(port), port)
        deadline = time.monotonic() + NOTEBOOK_READY_TIMEOUT
        while time.monotonic() < deadline:
            info = self.api.inspect_container(container_id)
            if not info["State"]["Running"]:
                tail = self.api.logs(container_id, tail=5).decode(errors="replace").strip()
                raise PrimageError(f"the notebook stopped at once ({describe_exit(info['State']['ExitCode'])}): {tail}")
            bound = (info["NetworkSettings"]["Ports"] or {}).get(f"{target}/tcp") or []
            if bound:
                url = f"http://127.0.0.1:{bound[0]['HostPort']}{http.get('path', '/')}"
                with (
                    contextlib.suppress(urllib.error.URLError, ConnectionError, OSError),
                    urllib.request.urlopen(url, timeout=2) as answer,
                ):
                    if answer.status < 400:
                        return
            time.sleep(0.5)
        raise PrimageError(f"the notebook did not answer within {NOTEBOOK_READY_TIMEOUT:.0f} s; see primage apps logs")

    def notebook_url(self, name: str) -> tuple[str, Path]:
        app = self.application(name)
        if app.submission.kind != "notebook":
            raise UsageError(f"{name} is not a notebook but an application of kind {app.submission.kind}")
        if not app.url:
            raise PrimageError(f"the notebook {name} is not running: start it with `{app.submission.command()}`")
        return app.url, self.store.folder(name) / "token"

    def stop_notebook(self, name: str) -> Application:
        app = self.application(name)
        if app.submission.kind != "notebook":
            raise UsageError(
                f"{name} is not a notebook but an application of kind {app.submission.kind}: primage apps delete {name}"
            )
        for container in self._containers(name):
            with contextlib.suppress(Exception):
                self.api.stop(container["Id"], timeout=podspec.DEFAULT_GRACE_SECONDS)
            self.api.remove_container(container["Id"], v=True, force=True)
        return self._notebook_application(app.submission, None)


def prepare_output(space: Path, output: str, user: tuple[int, int] | None) -> None:
    """The output folder, writable by the pods' user (the role creates it from the front end)."""
    folder = space / output
    missing = [p for p in [folder, *folder.parents] if space in p.parents and not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PrimageError(f"cannot create the output folder ({error.strerror or error})", file=folder) from None
    for created in reversed(missing):
        os.chmod(created, 0o775)  # noqa: S103  (the role's mode: the pods' group writes results there)
        if user and os.geteuid() == 0:
            os.chown(created, *user)
    if user and os.geteuid() == 0 and folder.stat().st_uid != user[0] and not missing:
        os.chown(folder, *user)


def remove_results(submission: model.Submission, listed: list[str]) -> list[str]:
    """The result folders of the listed inputs, and the overview, in the space: the output of a deleted application."""
    space = Path(submission.space)
    root = space / submission.output
    count = 0
    for path in listed:
        folder = space / inputs.result_folder(submission.output, path)
        if folder.is_dir() and root in folder.parents:
            shutil.rmtree(folder)
            inputs.prune_empty(folder.parent, root)
            count += 1
    for extra in ("overview.png", "report.html"):
        (root / extra).unlink(missing_ok=True)
    inputs.prune_empty(root, space)
    return [f"{count} result folder(s) in {root}"]


def _list_containers(filters: dict) -> list[dict]:
    """GET /containers/json on the engine's socket. Listing is all `apps list` asks of the engine, and
    the SDK's import alone (requests, paramiko) takes longer than everything else the command does."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return _client().containers(all=True, filters=filters)
    connection = http.client.HTTPConnection("localhost", timeout=10)
    connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.sock.settimeout(10)
    connection.sock.connect(host.removeprefix("unix://"))
    try:
        connection.request(
            "GET", "/containers/json?" + urllib.parse.urlencode({"all": 1, "filters": json.dumps(filters)})
        )
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        raise PrimageError(f"the Docker engine answered {answer.status} to a container listing: {body[:200]!r}")
    return json.loads(body)


def _mount(options: dict):
    from docker.types import Mount

    options = dict(options)
    return Mount(options.pop("target"), options.pop("source", None), **options)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"(log {path} is gone)\n"


class _Stop(Exception):
    """SIGTERM or SIGHUP to the command: stop as on Ctrl-C."""


class _Runner:
    """N tasks at a time, each attempt a container created, started, waited for, logged and removed."""

    def __init__(self, backend: LocalBackend, plan, container: podspec.ContainerPlan, tasks: list[Task], progress):
        self.backend = backend
        self.store = backend.store
        self.plan = plan
        self.container = container
        self.tasks = tasks
        self.progress = progress
        spec = plan.job["spec"]
        self.parallelism = max(1, int(spec.get("parallelism", 1)))
        self.retries = int(spec.get("backoffLimitPerIndex", 0))
        self.do_not_retry = _do_not_retry(spec.get("podFailurePolicy") or {}, container.container)
        self.job_name = plan.job["metadata"]["name"]
        self.queue = collections.deque(t for t in tasks if t.state != DONE)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.running: dict[str, Task] = {}
        self.finished: queue.Queue[str | None] = queue.Queue()  # containers to remove
        self.reaped = threading.Event()
        self.workers_done = 0
        self.interrupted = False
        self.stopped_because = ""
        self.finished_attempts: list[tuple[bool, float, str]] = []  # (succeeded, seconds, why) in order

    def counts(self) -> Counts:
        with self.lock:
            return Counts.of(self.tasks)

    def run(self) -> None:
        for task in self.queue:
            task.state, task.attempts, task.error, task.exit_code = PENDING, 0, "", None
        self.progress.start(self.counts())
        workers = [
            threading.Thread(target=self._worker, name=f"task-worker-{i}", daemon=True)
            for i in range(min(self.parallelism, len(self.queue)))
        ]
        reaper = threading.Thread(target=self._reap, name="task-reaper", daemon=True)
        reaper.start()
        previous = {sig: signal.signal(sig, self._signalled) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            for worker in workers:
                worker.start()
            # Polled with sleep, never Thread.join: a Ctrl-C inside join can leave a running thread
            # marked as stopped (CPython gh-90882), and its container would outlive the command.
            while self._workers_left(workers):
                self.progress.update(self.counts())
                time.sleep(0.1)
        except (KeyboardInterrupt, _Stop):
            self.interrupted = True
            self._stop(workers)
        finally:
            self.finished.put(None)
            self._join_reaper()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for task in self.tasks:
            if task.state == RUNNING:  # stopped between two attempts
                task.state, task.error = INTERRUPTED, "interrupted"
                self.store.record(self.plan.submission.name, task)
        self.progress.finish(self.counts())

    def _workers_left(self, workers) -> int:
        with self.lock:
            return len(workers) - self.workers_done

    def _reap(self) -> None:
        try:
            api = _client()
            while (cid := self.finished.get()) is not None:
                problem = remove_container(api, cid)
                if problem:
                    self.progress.note(f"could not remove the container {cid[:12]}: {problem} (docker rm -f it)")
        finally:
            self.reaped.set()

    def _join_reaper(self) -> None:
        """Every container removed before the command returns, even when Ctrl-C comes again."""
        while not self.reaped.is_set():
            with contextlib.suppress(KeyboardInterrupt, _Stop):
                time.sleep(0.1)

    def _signalled(self, signum, frame):
        raise _Stop(signal.Signals(signum).name)

    def _stop(self, workers) -> None:
        """Stop every running container (SIGTERM, then SIGKILL after the grace period), and wait for the
        workers to record the interrupted tasks and clear their partial results. A second Ctrl-C kills."""
        self.stopping.set()
        self.progress.note("stopping: the running tasks get SIGTERM, then their partial results are removed")
        api = _client()
        with self.lock:
            targets = list(self.running)
        stoppers = [
            threading.Thread(target=_quietly, args=(api.stop, cid, self.container.stop_timeout), daemon=True)
            for cid in targets
        ]
        for stopper in stoppers:
            stopper.start()
        while self._workers_left(workers):
            try:
                time.sleep(0.2)
            except (KeyboardInterrupt, _Stop):
                with self.lock:
                    targets = list(self.running)
                for cid in targets:
                    _quietly(api.kill, cid)

    def _worker(self) -> None:
        try:
            api = _client()  # one connection pool per thread
            while not self.stopping.is_set():
                with self.lock:
                    task = self.queue.popleft() if self.queue else None
                if task is None:
                    return
                self._run_task(api, task)
        finally:
            with self.lock:
                self.workers_done += 1

    def _run_task(self, api, task: Task) -> None:
        while not self.stopping.is_set():
            task.attempts += 1
            outcome = self._attempt(api, task)
            if outcome is None:  # stopped before it started
                task.attempts -= 1
                return
            code, oom, seconds, log = outcome
            if self.interrupted and not inputs.has_result(self.plan.space, task.input, task.output):
                self._interrupted(task)
                return
            finished = self._judge(task, code, oom, seconds, log)
            if finished or self.stopping.is_set():
                return
            self.progress.note(f"task {task.index} {task.input}: {task.error}; retry {task.attempts}/{self.retries}")

    def _attempt(self, api, task: Task):
        submission = self.plan.submission
        name = f"{self.backend.prefix}-{submission.name}-{task.index}-{task.attempts}"
        labels = {
            **self.backend._labels(submission),
            TASK_LABEL: str(task.index),
            INPUT_LABEL: task.input,
            ATTEMPT_LABEL: str(task.attempts),
            # As Kubernetes labels the pods of an Indexed Job.
            "batch.kubernetes.io/job-name": self.job_name,
            "batch.kubernetes.io/job-completion-index": str(task.index),
        }
        if self.stopping.is_set():
            return None
        cid = self.backend._create(self.container, name, labels, env={"JOB_COMPLETION_INDEX": str(task.index)}, api=api)
        with self.lock:
            self.running[cid] = task
        try:
            started = time.monotonic()
            task.state, task.started, task.finished, task.exit_code = RUNNING, model.now(), None, None
            api.start(cid)
            if self.stopping.is_set():  # Ctrl-C came while it was being created: _stop may have missed it
                _quietly(api.stop, cid, self.container.stop_timeout)
            self.store.record(submission.name, task)
            code = api.wait(cid)["StatusCode"]
            seconds = time.monotonic() - started
            oom = code == 137 and bool(api.inspect_container(cid)["State"].get("OOMKilled"))
            log = self.store.log_file(submission.name, task.index, task.attempts)
            log.write_bytes(api.logs(cid, stdout=True, stderr=True))
            return code, oom, seconds, log
        finally:
            with self.lock:
                self.running.pop(cid, None)
            # Removed by the reaper while this worker starts the next task (unmounting takes a while).
            self.finished.put(cid)

    def _judge(self, task: Task, code: int, oom: bool, seconds: float, log: Path) -> bool:
        """Record the attempt; True when the task is finished (done, or failed for good)."""
        task.exit_code, task.seconds, task.log, task.finished = code, round(seconds, 2), str(log), model.now()
        text = _read(log)
        # Stopped by Ctrl-C right after writing its marker: its results are complete all the same.
        succeeded = (code == 0 or self.interrupted) and inputs.has_result(self.plan.space, task.input, task.output)
        if succeeded:
            task.state, task.error = DONE, ""
        elif code == 0:
            task.error = f"exit 0 without writing its results (no {inputs.MARKER} in {task.output})"
        else:
            last = _last_line(text)
            task.error = f"exit {code}: {last}" if last and not oom else describe_exit(code, oom)
        final = succeeded or code == 0 or code in self.do_not_retry or task.attempts > self.retries
        if not succeeded:
            inputs.remove_incomplete(self.plan.space, task.output)
            if code in self.do_not_retry:
                task.error += " (not retried)"
            task.state = FAILED if final else RUNNING
        if final:
            self.store.record(self.plan.submission.name, task)
            self._save_summary()
            if task.state == FAILED:
                self.progress.note(f"task {task.index} {task.input} failed: {task.error} (log: {log})")
        self._watch_for_broken_image(succeeded, seconds, task.error, code)
        return final

    def _watch_for_broken_image(self, succeeded: bool, seconds: float, why: str, code: int) -> None:
        """An image that exits at once fails every task alike: stop after its first attempts, not
        after ten thousand. What the task contract says about one task (bad or missing input, a
        crash on one input, an output it cannot write) never stops the run."""
        if code in TASK_VERDICTS:
            return
        with self.lock:
            self.finished_attempts.append((succeeded, seconds, why))
            first = self.finished_attempts[:BROKEN_IMAGE_ATTEMPTS]
            if len(first) < BROKEN_IMAGE_ATTEMPTS or any(ok for ok, _s, _w in first) or self.stopped_because:
                return
            if all(s < BROKEN_IMAGE_SECONDS for _ok, s, _w in first):
                self.stopped_because = (
                    f"the image {self.plan.submission.image} exits at once: its first {len(first)} task attempts "
                    f"failed within {BROKEN_IMAGE_SECONDS:.0f} s ({first[-1][2]}); nothing else was started"
                )
                self.stopping.set()

    def _interrupted(self, task: Task) -> None:
        inputs.remove_incomplete(self.plan.space, task.output)
        task.state, task.attempts = INTERRUPTED, task.attempts - 1
        task.error = "interrupted"
        self.store.record(self.plan.submission.name, task)

    def _save_summary(self) -> None:
        counts = self.counts()
        summary = {"state": model.APP_RUNNING, "counts": counts.as_dict(), "updated": model.now()}
        self.store.save_summary(self.plan.submission.name, summary)


def _do_not_retry(policy: dict, container: str) -> set[int]:
    """The exit codes a FailIndex (or FailJob) rule of the Job's podFailurePolicy names."""
    codes: set[int] = set()
    for rule in policy.get("rules") or []:
        on_exit = rule.get("onExitCodes") or {}
        failing = rule.get("action") in ("FailIndex", "FailJob") and on_exit.get("operator") == "In"
        if failing and on_exit.get("containerName") in (None, container):
            codes.update(int(v) for v in on_exit.get("values") or [])
    return codes


def remove_container(api, cid: str, tries: int = 5) -> str:
    """Remove a container, again while the engine is busy unmounting it; '' when it is gone."""
    import docker

    problem = ""
    for attempt in range(tries):
        try:
            api.remove_container(cid, v=True, force=True)
            return ""
        except docker.errors.NotFound:
            return ""
        except docker.errors.APIError as error:
            problem = str(error.explanation or error)
            time.sleep(0.5 * (attempt + 1))
    return problem


def _quietly(call, *args, **kwargs) -> None:
    with contextlib.suppress(Exception):
        call(*args, **kwargs)
