"""`primage htc submit|demo`: a high-throughput application, one task per input file of a space.

`submit` finds the files matching --files in the space, renders the htc_batch workload (an
Indexed Job over the input list, from the role's templates) and runs it on a backend: locally
the Job's container on the Docker engine, N tasks at a time, with a live progress bar, then a
results table and an overview of the results (a contact sheet and an HTML report). Submitting
the same application again runs only the files whose results are missing. `demo` does it all
on this machine with sample volumes: the platform's canonical application.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import engine, paths
from ..apps import backend as backends
from ..apps import inputs, model, onedata, overview, prepare, views
from ..apps.progress import Progress
from ..errors import PrimageError, UsageError

EXIT_INTERRUPTED = 130
DEMO_NAME = "segmentation-demo"
DEMO_FILES = "inputs/*"
SEGMENTATION = "segmentation"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "htc",
        help="high-throughput applications: one task per input file (submit, demo)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="htc_action", metavar="ACTION")
    actions.required = True
    submit = actions.add_parser(
        "submit",
        help="run the application's image over every matching file of a space",
        description="One task per file matching --files in the space (and per DICOM series folder), "
        "the task contract's input list, index and output folder. Submitting the same application "
        "again resumes it: only the files whose results are missing run.",
    )
    add_submit_options(submit)
    demo = actions.add_parser(
        "demo",
        help="the canonical application on this machine: sample volumes, the segmentation image, a full run",
        description="Generate sample volumes (the segmentation image's own `sample` command) into a local "
        "space, build the segmentation image if it is missing, submit the HTC application on the local "
        "backend and end with the results table and the overview picture.",
    )
    demo.add_argument("--space", type=Path, metavar="DIR", help="the local space (default: a folder of the state)")
    demo.add_argument("--count", type=int, default=8, help="sample volumes to generate (default %(default)s)")
    demo.add_argument("--parallel", type=int, default=2, help="tasks at a time (default %(default)s)")
    demo.add_argument("--name", default=DEMO_NAME, help="application name (default %(default)s)")
    demo.add_argument("--json", action="store_true", help="print the application as JSON at the end")
    return parser


def add_submit_options(parser, one_task: bool = False) -> None:
    parser.add_argument("name", metavar="NAME", help="application name (an RFC 1123 label, e.g. liver-ct)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--space", type=Path, metavar="DIR", help="the space: a folder (e.g. a Onedata space mounted with oneclient)"
    )
    where.add_argument(
        "--onedata", metavar="SPACE", help="a Onedata space the cluster's nodes or pods mount (kubernetes backend)"
    )
    parser.add_argument(
        "--files",
        required=True,
        metavar="PATTERN",
        help="the input file"
        if one_task
        else "input files, a pattern relative to the space ('**' for sub-folders), "
        "e.g. 'inputs/*.nii.gz'; a matching folder of files is a DICOM series",
    )
    parser.add_argument(
        "--output", metavar="FOLDER", help="results folder, relative to the space (default: outputs/NAME)"
    )
    parser.add_argument("--image", metavar="IMAGE", help="task image (default: the segmentation image, this revision)")
    if not one_task:
        parser.add_argument(
            "--parallel",
            type=int,
            default=min(4, os.cpu_count() or 1),
            metavar="N",
            help="tasks at a time (default: the CPUs of this machine, at most 4: %(default)s)",
        )
    parser.add_argument("--retries", type=int, default=2, metavar="N", help="retries of a failed task (default 2)")
    add_backend_options(parser)
    parser.add_argument(
        "--onedata-config",
        type=Path,
        metavar="FILE",
        help=f"provider and token of --onedata, mode 0600 (default {onedata.default_config()})",
    )
    parser.add_argument(
        "--onedata-image",
        metavar="IMAGE",
        help="with --onedata: the Onedata variant the pods run (default: IMAGE-onedata, as the pipeline tags it)",
    )
    parser.add_argument(
        "--pod-overrides",
        type=Path,
        metavar="FILE",
        help="kubernetes backend: a YAML file of nodeSelector, tolerations, volumes, volumeMounts and env "
        "added to every pod (see the README)",
    )
    parser.add_argument("--json", action="store_true", help="print the application as JSON at the end")


def add_backend_options(parser) -> None:
    parser.add_argument(
        "--backend", choices=backends.BACKENDS, default="local", help="what runs it (default: local, the Docker engine)"
    )
    parser.add_argument("--kubeconfig", metavar="FILE", help="the cluster of the kubernetes backend")


def submit(args, kind: str) -> int:
    name = model.check_name(args.name)
    parallelism = getattr(args, "parallel", 1)
    if parallelism < 1 or args.retries < 0:
        raise UsageError("--parallel must be at least 1 and --retries at least 0")
    backend = backends.get(args.backend, args.kubeconfig)
    access = None
    if args.onedata:
        backend.refuse_onedata(args.onedata)
        access = onedata.load(args.onedata, args.onedata_config)
    elif args.onedata_image:
        raise UsageError("--onedata-image is the variant that mounts a Onedata space: it goes with --onedata SPACE")
    if args.pod_overrides is not None or args.onedata_image:
        _configure_pods(backend, args)
    space = inputs.check_space(args.space) if args.space else None
    if kind == "htc" and inputs.is_literal(args.files) and space is not None and (space / args.files).exists():
        kind = "batch"  # --files naming one file (or one series folder): a batch application
    default = not args.image
    image = prepare.check_pinned(args.image or prepare.default_image(SEGMENTATION))
    submission = model.Submission(
        name=name,
        kind=kind,
        backend=backend.name,
        image=image,
        space=str(space) if space else "",
        onedata=args.onedata or "",
        files=args.files,
        output=args.output or model.default_output(name),
        parallelism=parallelism,
        retries=args.retries,
        kubeconfig=args.kubeconfig or "",
        onedata_image=args.onedata_image or "",
        pod_overrides=str(args.pod_overrides.resolve()) if args.pod_overrides else "",
    )
    check_same(backend, submission)
    backend.check_image(image, default)
    if args.onedata_image:
        backend.check_image(prepare.check_pinned(args.onedata_image), False)
    plan = prepare.htc(submission, backend, space, access)
    return run_plan(backend, plan, args.json)


def _configure_pods(backend, args) -> None:
    from ..apps import overrides

    if backend.name != "kubernetes":
        raise UsageError("--pod-overrides and --onedata-image are for --backend kubernetes (pods of a cluster)")
    if args.onedata_image:
        backend.onedata_image = prepare.check_pinned(args.onedata_image)
    if args.pod_overrides is not None:
        backend.pod_overrides = overrides.load(args.pod_overrides)


def check_same(backend, submission: model.Submission) -> None:
    """A name holds one submission: the same again resumes it, a different one is refused."""
    existing = backend.submission(submission.name)
    if existing is None:
        return
    differences = existing.differences(submission)
    if differences:
        raise PrimageError(
            f"the name {submission.name} is taken by a different submission ({', '.join(differences)}): "
            f"delete it first (primage apps delete {submission.name}) or choose another name"
        )


def run_plan(backend, plan: prepare.HtcPlan, as_json: bool) -> int:
    submission = plan.submission
    engine.progress(
        f"{submission.name}: {len(plan.inputs)} input(s) in {submission.space or submission.onedata}, image "
        f"{submission.image}, {submission.parallelism} at a time on the {backend.name} backend"
    )
    progress = Progress(submission.name)
    outcome = backend.run_htc(plan, progress)
    app = outcome.application
    for note in outcome.notes:
        engine.progress(note)
    pictures = overview.write(app, plan.space) if plan.space is not None and app.tasks else ()
    if as_json:
        data = app.as_dict()
        data.update(
            {
                "interrupted": outcome.interrupted,
                "stopped_because": outcome.stopped_because,
                "overview": str(pictures[0]) if pictures else None,
                "report": str(pictures[1]) if pictures else None,
            }
        )
        print(json.dumps(data, indent=2))
    else:
        print(views.tasks_table(app))
        print()
        print(views.counts_line(app))
        if pictures:
            print(f"overview picture: {pictures[0]}")
            print(f"report:           {pictures[1]}")
    sys.stdout.flush()
    return _ending(app, outcome)


def _ending(app: model.Application, outcome) -> int:
    name = app.name
    if outcome.interrupted:
        print(
            f"primage: stopped: {app.counts.done} of {app.counts.total} tasks done; no container is left and no "
            f"partial result. Resume with the same command: {app.submission.command()}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if outcome.stopped_because:
        failed = next((t for t in app.tasks if t.state == model.FAILED), None)
        hint = f"; its log: primage apps logs {name} {failed.index}" if failed else ""
        print(f"primage: {outcome.stopped_because}{hint}", file=sys.stderr)
        return 1
    if app.counts.failed:
        print(
            f"primage: {app.counts.failed} task(s) failed: primage apps show {name}, primage apps logs {name} TASK; "
            f"submitting again retries them",
            file=sys.stderr,
        )
        return 1
    return 0


# --- the demo ------------------------------------------------------------------------------------------


def demo(args) -> int:
    name = model.check_name(args.name)
    space = (args.space or paths.state_dir() / "demo-space").resolve()
    backend = backends.get("local")
    image = ensure_segmentation_image()
    make_sample(backend, image, space, args.count)
    args = _demo_submit_args(args, name, space, image)
    return submit(args, "htc")


def ensure_segmentation_image() -> str:
    """The segmentation image of this revision, built by the image pipeline when it is missing."""
    return ensure_application_image(SEGMENTATION)


def ensure_application_image(directory: str) -> str:
    """The image of containers/<directory> at this revision (no variant), built when it is missing."""
    from ..images import build, revision, spec

    engine.ensure_docker()
    planned = revision.plan(spec.build_order(spec.load_set(), [directory], with_variants=False))
    wanted = planned[-1].reference
    if engine.image_present(wanted):
        return wanted
    engine.progress(f"the {directory} image {wanted} is missing: building it (primage images build {directory})")
    results = build.build_all(planned)
    broken = [r for r in results if r.status != build.BUILT]
    if broken:
        raise PrimageError(f"the image build failed: {broken[0].problem or broken[0].reason}")
    return wanted


def make_sample(backend, image: str, space: Path, count: int) -> None:
    """Sample volumes with known masks, written by the segmentation image's own `sample` command."""
    listed = space / "inputs.txt"
    if listed.is_file() and len(listed.read_text().splitlines()) >= count:
        engine.progress(f"sample volumes already in {space}")
        return
    space.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(space, 1000, 1000)  # the image's user writes the sample
    engine.progress(f"writing {count} sample volumes into {space} (primage-segment sample)")
    mount = "/mnt/onedata"
    api = backend.api
    container = api.create_container(
        image,
        ["primage-segment", "sample", mount, "--count", str(count)],
        name=f"{backend.prefix}-demo-sample",
        user="1000:1000",
        labels={"eu.primage.checkout": backend.checkout, "eu.primage.kind": "sample"},
        host_config=api.create_host_config(binds={str(space): {"bind": mount, "mode": "rw"}}),
    )["Id"]
    try:
        api.start(container)
        code = api.wait(container)["StatusCode"]
        log = api.logs(container).decode(errors="replace")
    finally:
        api.remove_container(container, force=True)
    if code != 0:
        raise PrimageError(f"the sample command failed (exit {code}): {log.strip()[-500:]}", file=space)


def _demo_submit_args(args, name: str, space: Path, image: str):
    import argparse

    return argparse.Namespace(
        name=name,
        space=space,
        onedata=None,
        files=DEMO_FILES,
        output=None,
        image=image,
        parallel=args.parallel,
        retries=2,
        backend="local",
        kubeconfig=None,
        onedata_config=None,
        onedata_image=None,
        pod_overrides=None,
        json=args.json,
    )


def run(args) -> int:
    if args.htc_action == "demo":
        return demo(args)
    return submit(args, "htc")
