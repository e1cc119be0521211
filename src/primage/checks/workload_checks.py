"""Checks of workload cases (ansible/roles/<role>/ci/<case>.yml): the manifests the role templates
render for the case's values, with the schemas of the pinned Kubernetes version (strict) and an
offline policy checker (checkov), plus the platform's own rules for every workload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path

from .. import paths, workloads, yamlio
from ..errors import Problem
from ..pieces import Piece
from . import Context, Result, from_problems, not_run
from .yaml_lint import check_files

WORKLOAD_KINDS = ("Job", "StatefulSet", "Deployment", "DaemonSet")


def _case(piece: Piece, context: Context) -> workloads.Case:
    if "case" not in context:
        context["case"] = workloads.load_case(piece.path)
    return context["case"]


def render_check(piece: Piece, context: Context) -> Result:
    """The case renders, and into the objects it expects."""
    case = _case(piece, context)
    workload = case.render()
    context["workload"] = workload
    problems = []
    expected = (case.expect or {}).get("kinds")
    if expected is not None and workload.kinds() != expected:
        problems.append(
            Problem(piece.display_path, f"renders {workload.kinds()}, expected {expected}", field="expect.kinds")
        )
    return from_problems("render", problems)


def _rendered(piece: Piece, context: Context, check: str) -> workloads.Workload | Result:
    if "workload" not in context:
        return not_run(check, "the case does not render (see the render check)")
    return context["workload"]


def rules_check(piece: Piece, context: Context) -> Result:
    """What every workload of the platform keeps: requests and limits, non-root, no latest, no /dev hostPath."""
    workload = _rendered(piece, context, "rules")
    if isinstance(workload, Result):
        return workload
    problems = []
    for manifest in workload.manifests:
        if manifest.kind not in WORKLOAD_KINDS:
            continue
        pod = manifest.definition["spec"]["template"]["spec"]
        where = f"{manifest.kind} {manifest.name}"
        pod_context = pod.get("securityContext") or {}
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            if key not in pod_context:
                problems.append(Problem(piece.display_path, f"{where}: the pod sets no securityContext.{key}"))
        for volume in pod.get("volumes") or []:
            host_path = (volume.get("hostPath") or {}).get("path", "")
            if host_path.startswith("/dev"):
                problems.append(
                    Problem(piece.display_path, f"{where}: hostPath {host_path} (devices come from a device plugin)")
                )
        for container in pod["containers"]:
            problems += _container_problems(piece, where, container, pod_context)
    return from_problems("rules", problems)


def _container_problems(piece: Piece, where: str, container: dict, pod_context: dict) -> list[Problem]:
    problems = []
    name = f"{where} container {container['name']}"
    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        missing = [r for r in ("cpu", "memory") if r not in (resources.get(section) or {})]
        if missing:
            problems.append(Problem(piece.display_path, f"{name}: no {section} for {', '.join(missing)}"))
    image = container.get("image", "")
    if not workloads.image_pattern().fullmatch(image):
        problems.append(
            Problem(piece.display_path, f"{name}: image {image} is not pinned (a tag other than latest, or a digest)")
        )
    context = container.get("securityContext") or {}
    added = (context.get("capabilities") or {}).get("add") or []
    if context.get("privileged") is not False:
        problems.append(Problem(piece.display_path, f"{name}: must set privileged false"))
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(Problem(piece.display_path, f"{name}: must set allowPrivilegeEscalation false"))
    if added and "SYS_ADMIN" not in added:
        problems.append(Problem(piece.display_path, f"{name}: adds {added} without mounting anything"))
    if not added and pod_context.get("runAsNonRoot") is not True:
        problems.append(Problem(piece.display_path, f"{name}: adds no capability, so it must run as non-root"))
    if added:
        fuse = [r for r in (resources.get("limits") or {}) if "/" in r]
        if not fuse:
            problems.append(
                Problem(piece.display_path, f"{name}: mounts with SYS_ADMIN but requests no FUSE device resource")
            )
    return problems


def kubernetes_version() -> str:
    """The schema version of the Kubernetes the kubernetes role pins (1.36.3 -> 1.36.0)."""
    defaults, _ = yamlio.load_file(paths.ansible_dir() / "roles" / "kubernetes" / "defaults" / "main.yml")
    major, minor = str(defaults["kubernetes_version"]).split(".")[:2]
    return f"{major}.{minor}.0"


def schema_check(piece: Piece, context: Context) -> Result:
    workload = _rendered(piece, context, "kubernetes-validate")
    if isinstance(workload, Result):
        return workload
    binary = Path(sys.executable).parent / "kubernetes-validate"
    if not binary.exists():
        return not_run(
            "kubernetes-validate", "kubernetes-validate is not installed in this environment (scripts/setup.sh)"
        )
    with tempfile.TemporaryDirectory(prefix="primage-workload-") as folder:
        files = _write(workload, Path(folder))
        completed = subprocess.run(
            [str(binary), "--strict", "--quiet", "--kubernetes-version", kubernetes_version(), *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode == 0:
        return from_problems("kubernetes-validate", [])
    lines = [
        line.replace(folder + "/", "") for line in (completed.stdout + completed.stderr).splitlines() if line.strip()
    ]
    return from_problems("kubernetes-validate", [Problem(piece.display_path, line) for line in lines[:20]])


def _write(workload: workloads.Workload, folder: Path) -> list[Path]:
    """One file per manifest, Secrets redacted: secrets never go to disk, even a temporary one."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for manifest in workload.manifests:
        path = folder / manifest.file
        path.write_text(json.dumps(workloads.redacted(manifest.definition), indent=2), encoding="utf-8")
        files.append(path)
    return files


# --- checkov, offline -------------------------------------------------------------------------------


def checkov_binary() -> Path:
    return Path(sys.executable).parent / "checkov"


def policy_check(piece: Piece, context: Context) -> Result:
    """checkov's Kubernetes policies, offline; waivers are skip annotations, each with its reason."""
    workload = _rendered(piece, context, "checkov")
    if isinstance(workload, Result):
        return workload
    if not checkov_binary().exists():
        return not_run("checkov", "checkov is not installed in this environment (scripts/setup.sh installs it)")
    key = str(piece.path.resolve())
    in_tree = key in {str(p.path.resolve()) for p in _tree_cases()}
    findings = (_checkov_tree().get(key) if in_tree else None) or _checkov({key: workload})[key]
    if "error" in findings:
        return from_problems("checkov", [Problem(piece.display_path, findings["error"])])
    problems = [
        Problem(piece.display_path, f"{f['resource']}: {f['check_id']} {f['check_name']}", field=f["file"])
        for f in findings["failed"]
    ]
    result = from_problems("checkov", problems)
    result.reason = f"{findings['passed']} passed, {len(findings['skipped'])} waived"
    return result


def _tree_cases() -> list[Piece]:
    from .. import pieces

    return [p for p in pieces.discover() if p.kind == "workload-case"]


@cache
def _checkov_tree() -> dict[str, dict]:
    """Every in-tree case in one checkov run (it takes seconds to start), cached for the process."""
    rendered = {}
    for piece in _tree_cases():
        try:
            rendered[str(piece.path.resolve())] = workloads.load_case(piece.path).render()
        except Exception as exc:  # reported by the render check of that case
            rendered[str(piece.path.resolve())] = exc
    return _checkov(rendered)


def _checkov(rendered: dict) -> dict[str, dict]:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="primage-checkov-") as folder:
        owners = {}
        for index, (key, workload) in enumerate(sorted(rendered.items())):
            if isinstance(workload, Exception):
                results[key] = {"error": "the case does not render"}
                continue
            _write(workload, Path(folder) / f"case{index}")
            owners[f"case{index}"] = key
            results[key] = {"failed": [], "skipped": [], "passed": 0}
        if not owners:
            return results
        env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_NO_OUTPUT_COLOR="1", LOG_LEVEL="ERROR")
        completed = subprocess.run(
            [str(checkov_binary()), "--skip-download", "--framework", "kubernetes", "-o", "json", "-d", folder],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        tail = " | ".join((completed.stderr or completed.stdout).strip().splitlines()[-3:])
        return {key: {"error": f"checkov gave no report (exit {completed.returncode}): {tail}"} for key in rendered}
    for section in report if isinstance(report, list) else [report]:
        for status, checks in (("failed", "failed_checks"), ("skipped", "skipped_checks"), ("passed", "passed_checks")):
            for finding in (section.get("results") or {}).get(checks) or []:
                case, _, file = finding["file_path"].lstrip("/").partition("/")
                entry = results[owners[case]]
                if status == "passed":
                    entry["passed"] += 1
                    continue
                entry[status].append(
                    {
                        "file": file,
                        "resource": finding.get("resource", ""),
                        "check_id": finding["check_id"],
                        "check_name": finding.get("check_name", ""),
                        "reason": (finding.get("check_result") or {}).get("suppress_comment", ""),
                    }
                )
    return results


# --- server-side dry run on the test cluster ----------------------------------------------------


def dry_run_check(piece: Piece, context: Context) -> Result:
    """Every manifest through the real API server of the pinned version (admission, defaulting,
    strict field validation), stored nowhere; `not run` when this checkout's test cluster is down."""
    workload = _rendered(piece, context, "dry-run")
    if isinstance(workload, Result):
        return workload
    from .. import cluster

    layout = cluster.Layout()
    if not cluster.environment(layout):
        return not_run("dry-run", "no test cluster is up (`primage cluster up` starts one; this check then runs)")
    if not os.access(layout.admin_kubeconfig, os.R_OK):
        return not_run("dry-run", "the test cluster's admin kubeconfig is root's: run as root")
    # The case's throwaway secret values go to kubectl on its standard input, never a command line.
    files = {f"{m.kind}/{m.name}": m.file for m in workload.manifests}
    problems = [
        replace(problem, file=piece.display_path, field=files.get(problem.field.split(": ", 1)[-1], problem.field))
        for problem in cluster.dry_run([m.definition for m in workload.manifests], layout)
    ]
    result = from_problems("dry-run", problems)
    result.reason = f"{len(workload.manifests)} objects, Kubernetes {kubernetes_version().rsplit('.', 1)[0]}"
    return result


CASE_CHECKS = [
    ("yamllint", lambda piece, context: check_files(piece.path)),
    ("render", render_check),
    ("rules", rules_check),
    ("kubernetes-validate", schema_check),
    ("checkov", policy_check),
    ("dry-run", dry_run_check),
]
