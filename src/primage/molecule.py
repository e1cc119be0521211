"""The Molecule matrix: every role's scenario on every platform, stage by stage.

Each (role, platform) runs `molecule create (with prepare), converge, idempotence,
side-effect, verify, destroy` one stage at a time, so the result is a table of role by
platform by stage (a scenario without side_effect.yml shows `skip` there).
The platform image comes from MOLECULE_IMAGE (the scenarios read it); each run gets its
own ephemeral directory, so runs of different roles and platforms can go in parallel.
A platform whose image is not present is reported as not run, with the reason.
Scenarios with a cluster.yml run on the real test cluster (see molecule_cluster.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import ansible_env, cluster, engine, molecule_cluster, paths, roles, yamlio
from .errors import PrimageError

# `molecule create` runs the scenario's prepare playbook too.
STAGES = ("create", "converge", "idempotence", "side_effect", "verify", "destroy")
OK, FAILED, SKIPPED, NOT_RUN = "ok", "FAIL", "skip", "not run"
_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(message, file=sys.stderr, flush=True)


@dataclass
class StageResult:
    stage: str
    status: str
    seconds: float = 0.0
    log: Path | None = None


@dataclass
class Run:
    role: str
    platform: str  # image tag, e.g. debian:trixie
    scenario: Path
    stages: list[StageResult] = field(default_factory=list)
    reason: str = ""
    cluster: molecule_cluster.Needs | None = None
    error: str = ""  # why it failed before any stage could run (e.g. no test cluster)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.platform.replace(":", "-").replace(".", "")

    @property
    def failed(self) -> bool:
        return bool(self.error) or any(s.status == FAILED for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def as_dict(self) -> dict:
        return {
            "role": self.role,
            "platform": self.platform,
            "reason": self.reason,
            "error": self.error,
            "cluster": bool(self.cluster),
            "failed": self.failed,
            "seconds": round(self.seconds, 1),
            "stages": {s.stage: {"status": s.status, "seconds": round(s.seconds, 1)} for s in self.stages},
        }


def default_platforms() -> list[str]:
    return [image.tag for image in engine.base_images() if image.purpose == "platform"]


def kube_tools_dir() -> Path:
    """Where scripts/build-kube-tools.sh puts the real kubeadm of the pinned Kubernetes version."""
    defaults = roles.find("kubernetes").defaults() if (paths.ansible_dir() / "roles/kubernetes").exists() else {}
    version = str(defaults.get("kubernetes_version", ""))
    return paths.cache_dir() / "kube-tools" / f"v{version}" / "bin"


def environment(run: Run) -> dict[str, str]:
    env = ansible_env.environment()
    env["MOLECULE_IMAGE"] = run.platform
    # Instance names are <role>-${MOLECULE_PLATFORM}: the checkout's id keeps two clones that
    # run the same scenario at once (a developer and CI) from destroying each other's instances.
    env["MOLECULE_PLATFORM"] = f"{run.slug}-{paths.checkout_id()[:6]}"
    env["MOLECULE_EPHEMERAL_DIRECTORY"] = str(paths.state_dir() / "molecule" / f"{run.role}-{run.slug}")
    env["ANSIBLE_LOCAL_TEMP"] = str(paths.state_dir() / "molecule" / f"{run.role}-{run.slug}" / "ansible-tmp")
    kubeadm = kube_tools_dir() / "kubeadm"
    if kubeadm.is_file():
        env.setdefault("PRIMAGE_KUBEADM", str(kubeadm))
    # When the test cluster is up, scenarios can mount its kubeconfig into their instances.
    env.update(cluster.environment())
    env.update(run.extra_env)
    return env


def _stage_skipped(stage: str, output: str) -> bool:
    return bool(re.search(rf"> {stage}: Executed: Missing playbook", output))


def left_created(ephemeral: Path) -> bool:
    """Whether Molecule's state says the instances exist: an earlier run was interrupted before destroy."""
    state = ephemeral / "state.yml"
    if not state.is_file():
        return False
    try:
        data, _ = yamlio.load_file(state)
    except PrimageError:  # unreadable: destroying is what is safe
        return True
    return isinstance(data, dict) and bool(data.get("created"))


def _molecule(stage: str, run: Run, env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    with open(log, "w") as out:
        return subprocess.run(
            [str(Path(sys.executable).parent / "molecule"), stage.replace("_", "-"), "-s", run.scenario.name],
            cwd=run.scenario.parent.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )


def run_one(run: Run, logs: Path, keep: bool = False) -> Run:
    env = environment(run)
    prefix = f"[{run.role} {run.platform}]"
    broken = False
    # Else create and prepare are skipped ("already created") and converge meets a dead container
    # (or one bound to a space folder that has just been made afresh).
    if left_created(Path(env["MOLECULE_EPHEMERAL_DIRECTORY"])):
        say(f"{prefix} an earlier run was interrupted: destroying its instance first")
        _molecule("destroy", run, env, logs / f"{run.role}-{run.slug}-leftover-destroy.log")
    for stage in STAGES:
        if stage == "destroy" and keep:
            run.stages.append(StageResult(stage, SKIPPED))
            continue
        if broken and stage != "destroy":
            run.stages.append(StageResult(stage, NOT_RUN))
            continue
        log = logs / f"{run.role}-{run.slug}-{stage}.log"
        say(f"{prefix} {stage} ...")
        start = time.monotonic()
        completed = _molecule(stage, run, env, log)
        seconds = time.monotonic() - start
        output = log.read_text(errors="replace")
        if completed.returncode != 0:
            status = FAILED
            broken = True
            tail = "\n".join(f"    {line}" for line in output.strip().splitlines()[-15:])
            say(f"{prefix} {stage} FAILED after {seconds:.0f} s; log {paths.relative(log)}:\n{tail}")
        else:
            status = SKIPPED if _stage_skipped(stage, output) else OK
            say(f"{prefix} {stage} {status} ({seconds:.0f} s)")
        run.stages.append(StageResult(stage, status, seconds, log))
    if run.cluster:  # kept after a failure or with --keep, for a look at what the pods wrote
        molecule_cluster.release_space(
            molecule_cluster.space_folder(run.role, run.slug), remove=not keep and not run.failed
        )
    return run


def plan(role_names: list[str], platforms: list[str]) -> list[Run]:
    selected = [roles.find(name) for name in role_names] if role_names else roles.discover()
    runs = []
    for role in selected:
        scenarios = role.scenarios()
        if not scenarios:
            runs.append(Run(role.name, "-", role.path, reason="the role has no Molecule scenario"))
            continue
        for platform in platforms:
            for scenario in scenarios:
                needs = molecule_cluster.needs(scenario)
                run = Run(role.name, platform, scenario, cluster=needs)
                if needs and not needs.runs_on(platform):
                    run.reason = (
                        f"runs on the test cluster on {', '.join(needs.platforms)} only ({paths.relative(needs.file)})"
                    )
                runs.append(run)
    return runs


def run_matrix(
    role_names: list[str], platforms: list[str] | None = None, jobs: int = 2, keep: bool = False
) -> list[Run]:
    engine.ensure_docker()
    platforms = platforms or default_platforms()
    runs = plan(role_names, platforms)
    logs = paths.state_dir() / "molecule-logs"
    logs.mkdir(parents=True, exist_ok=True)
    runnable = []
    for run in runs:
        if run.reason:
            continue
        if not engine.image_present(run.platform):
            run.reason = (
                f"image {run.platform} is not present here (build it with `primage images base "
                f"{run.platform}` where its archive and keyring are available, or pull it)"
            )
            continue
        runnable.append(run)
    say(
        f"Molecule matrix: {len(runnable)} runs of {len(STAGES)} stages, {jobs} at a time; "
        f"logs in {paths.relative(logs)}"
    )
    session = molecule_cluster.Session([run.cluster for run in runnable if run.cluster], keep=keep)
    session.open()
    try:
        for run in runnable:
            _give_cluster(run, session)
        # The runs on the cluster go first, and the cluster goes down as soon as the last of them
        # is done: one cluster per host, so others can have it while the other runs go on.
        on_cluster = [r for r in runnable if r.cluster and not r.error]
        remaining = [len(on_cluster)]
        lock = threading.Lock()

        def one(run: Run) -> None:
            run_one(run, logs, keep)
            if run.cluster:
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        session.close()

        ordered = on_cluster + [r for r in runnable if not r.cluster]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, ordered))
    finally:
        session.close()
    return runs


def _give_cluster(run: Run, session: molecule_cluster.Session) -> None:
    """A run that needs the test cluster gets its variables, or fails saying why it cannot have it."""
    if not run.cluster:
        return
    try:
        if session.error:
            raise PrimageError(session.error)
        run.extra_env = session.environment(run.cluster, run.role, run.slug)
    except PrimageError as exc:
        run.error = f"needs the test cluster ({paths.relative(run.cluster.file)}), which cannot run: {exc}"
        say(f"[{run.role} {run.platform}] FAIL: {run.error}")


def table_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        by_stage = {s.stage: s for s in run.stages}
        cells = []
        for stage in STAGES:
            result = by_stage.get(stage)
            if run.error:
                cells.append(FAILED if stage == STAGES[0] else NOT_RUN)
            elif result is None:
                cells.append(NOT_RUN if run.reason else "")
            elif result.status in (OK, FAILED):
                cells.append(f"{result.status} {result.seconds:.0f}s")
            else:
                cells.append(result.status)
        total = f"{run.seconds:.0f}s" if run.stages else "-"
        rows.append([run.role, run.platform, *cells, total])
    return rows
