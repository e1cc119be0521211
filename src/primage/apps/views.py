"""The tables of the application commands (JSON is each object's as_dict)."""

from __future__ import annotations

from pathlib import Path

from .. import report
from . import overview
from .model import DONE, FAILED, Application, age

MAX_ROWS = 100


def applications_table(apps: list[Application]) -> str:
    rows = [
        [
            app.name,
            app.submission.kind,
            app.submission.backend,
            app.state,
            "" if app.submission.kind == "notebook" else f"{app.counts.done}/{app.counts.failed}/{app.counts.total}",
            age(app.submission.created),
        ]
        for app in apps
    ]
    return report.table(["name", "kind", "backend", "state", "done/failed/total", "age"], rows)


def _result(task, space: Path | None) -> str:
    if task.state == FAILED:
        return task.error
    if task.state == DONE and space is not None:
        facts = overview.highlights(space / task.output)
        text = "  ".join(f"{k} {v}" for k, v in facts)
        return text + (" (earlier run)" if task.reused else "")
    return task.error if task.state == "interrupted" else ""


def tasks_table(app: Application, limit: int | None = MAX_ROWS) -> str:
    space = Path(app.submission.space) if app.submission.space else None
    shown = app.tasks if limit is None else app.tasks[:limit]
    rows = [
        [
            str(t.index),
            t.input,
            t.state,
            str(t.attempts),
            "" if t.exit_code is None else str(t.exit_code),
            (t.started or "").replace("+00:00", "Z"),
            "" if t.seconds is None else f"{t.seconds:.1f}",
            _result(t, space),
        ]
        for t in shown
    ]
    text = report.table(["task", "input", "state", "attempts", "exit", "started", "seconds", "result"], rows)
    if len(app.tasks) > len(shown):
        text += f"\n... and {len(app.tasks) - len(shown)} more tasks: primage apps show {app.name} --all"
    return text


def counts_line(app: Application) -> str:
    counts = app.counts
    reused = sum(t.reused for t in app.tasks)
    earlier = f" ({reused} from an earlier run)" if reused else ""
    left = counts.left + counts.running
    return (
        f"{counts.total} tasks: {counts.done} done{earlier}, {counts.failed} failed"
        + (f", {left} not run" if left else "")
        + f"; state {app.state}"
    )
