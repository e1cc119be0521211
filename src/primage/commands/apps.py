"""`primage apps list|show|logs|output|delete`: follow the applications submitted, on any backend.

The record lives where the backend keeps it (on the local backend: labels of the engine's
containers and a small state folder), so every terminal, and a new one after a reboot, sees the
same state. Tables by default, `--json` for scripts.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ..apps import backend as backends
from ..apps import views
from ..errors import PrimageError
from .htc import add_backend_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "apps",
        help="list, inspect, follow and delete submitted applications; fetch their output",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="apps_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="every application: kind, backend, state, tasks, age")
    _common(listing)
    show = actions.add_parser("show", help="one application: the state of each task, times, exit codes, errors")
    _common(show, named=True)
    show.add_argument("--all", action="store_true", help="every task (the table shows the first 100)")
    logs = actions.add_parser("logs", help="the log of a task (an index or an input), or of every task")
    _common(logs, named=True, with_json=False)
    logs.add_argument("task", nargs="?", metavar="TASK", help="task index or input path (default: every task)")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the task (or the application) ends")
    output = actions.add_parser("output", help="where the results are; --copy copies them")
    _common(output, named=True)
    output.add_argument("--copy", type=Path, metavar="DIR", help="copy the results (and the overview) into DIR")
    delete = actions.add_parser("delete", help="stop and remove an application, and its results unless kept")
    _common(delete, named=True)
    delete.add_argument("--keep-output", action="store_true", help="keep the results (a notebook: its home volume)")
    return parser


def _common(parser, named: bool = False, with_json: bool = True) -> None:
    if named:
        parser.add_argument("name", metavar="NAME", help="application name")
    add_backend_options(parser)
    if with_json:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _print(data) -> None:
    print(json.dumps(data, indent=2))


def run_list(backend, args) -> int:
    apps = backend.applications()
    if args.json:
        _print([app.as_dict(with_tasks=False) for app in apps])
    elif apps:
        print(views.applications_table(apps))
    else:
        print("no application yet: submit one with `primage htc submit` (or try `primage htc demo`)")
    return 0


def run_show(backend, args) -> int:
    app = backend.application(args.name)
    if args.json:
        _print(app.as_dict())
        return 0
    submission = app.submission
    print(f"{app.name}: {submission.kind} application on the {submission.backend} backend, {app.state}")
    print(f"  image   {submission.image}")
    print(f"  space   {submission.space or submission.onedata or '(a folder of its own in the state folder)'}")
    if submission.kind == "notebook":
        print(f"  url     {app.url or '(not running)'}")
    else:
        print(f"  files   {submission.files}")
        print(f"  output  {submission.output}")
        print(f"  created {submission.created}, {submission.parallelism} at a time, {submission.retries} retries")
        print()
        print(views.tasks_table(app, limit=None if args.all else views.MAX_ROWS))
        print()
        print(views.counts_line(app))
    if app.note:
        print(app.note)
    return 0


def run_logs(backend, args) -> int:
    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    backend.logs(args.name, args.task, args.follow, write)
    return 0


def run_output(backend, args) -> int:
    found = backend.output(args.name)
    copied = []
    if args.copy:
        if found.root is None or not found.root.is_dir():
            raise PrimageError(f"the results of {args.name} are not in a folder of this machine ({found.where})")
        for _input, folder in found.results:
            target = args.copy / Path(folder).relative_to(found.root)
            shutil.copytree(folder, target, dirs_exist_ok=True)
            copied.append(str(target))
        for extra in found.extra:
            args.copy.mkdir(parents=True, exist_ok=True)
            shutil.copy2(extra, args.copy / extra.name)
            copied.append(str(args.copy / extra.name))
    if args.json:
        _print(
            {
                "name": args.name,
                "output": found.where,
                "results": [{"input": i, "folder": f} for i, f in found.results],
                "overview": [str(p) for p in found.extra],
                "copied": copied,
            }
        )
        return 0
    print(f"results of {args.name}: {found.where}")
    for input_path, folder in found.results:
        print(f"  {input_path}: {folder}")
    for extra in found.extra:
        print(f"  {extra.name}: {extra}")
    if args.copy:
        print(f"copied {len(found.results)} result folder(s) and {len(found.extra)} overview file(s) to {args.copy}")
    return 0


def run_delete(backend, args) -> int:
    removed = backend.delete(args.name, args.keep_output)
    if args.json:
        _print({"name": args.name, "removed": removed, "kept_output": args.keep_output})
    else:
        print(f"deleted {args.name}: " + "; ".join(removed))
    return 0


def run(args) -> int:
    backend = backends.get(args.backend, args.kubeconfig)
    handlers = {"list": run_list, "show": run_show, "logs": run_logs, "output": run_output, "delete": run_delete}
    return handlers[args.apps_action](backend, args)
