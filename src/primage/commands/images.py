"""`primage images base|build|test|push`: the container images, on the local Docker engine.

`base` bootstraps the base images (debootstrap, no registry needed). `build`, `test` and `push`
are the image pipeline: every folder of containers/ with an image.yml, found from the files,
built in the order its `requires` give, tagged <version>-g<git revision>, tested inside and
from outside, pushed over verified TLS. Each ends with a table; exit 1 when anything failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import engine, paths, report
from ..errors import UsageError
from ..images import revision, spec


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "images",
        help="build, test and push the container images (and bootstrap base images)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    actions = parser.add_subparsers(dest="images_action", metavar="ACTION")
    actions.required = True
    base = actions.add_parser(
        "base",
        help="bootstrap base images declared in containers/base/images.yml",
        description="Bootstrap base images with debootstrap and import them into "
        "Docker under their upstream names. Without TAG, the default "
        "ones (Debian 12 and 13). Set PRIMAGE_EXTRA_CA_BUNDLE to a PEM "
        "file to trust an intercepting proxy inside the images.",
    )
    base.add_argument("tags", nargs="*", metavar="TAG", help="image tag, e.g. debian:trixie")
    base.add_argument("--force", action="store_true", help="rebuild even when the recipe did not change")
    build = actions.add_parser(
        "build",
        help="build images (and the images they require), requirements first",
        description="Build each image with the engine's layer cache, after bootstrapping or refreshing "
        "the base images its Dockerfile uses. Tags: <version>-g<revision>[-dirty].",
    )
    _common(build)
    build.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a build argument for every selected Dockerfile that declares it, e.g. a site's mirror of "
        "oneclient's apt source (ONECLIENT_APT_URL=...); repeatable",
    )
    build.add_argument("--verbose", action="store_true", help="print every line the build steps print")
    build.add_argument("--no-cache", action="store_true", help="build every step again, without the layer cache")
    test = actions.add_parser(
        "test",
        help="run each image's unit tests inside it, then its tests from outside (pytest)",
        description="Run test.unit of image.yml inside the built image, then pytest on "
        "tests/images/<dir> with PRIMAGE_TEST_IMAGE set.",
    )
    _common(test)
    test.add_argument(
        "--tests-dir",
        type=Path,
        metavar="DIR",
        help="folder of the tests from outside, one sub-folder per image (default: tests/images)",
    )
    push = actions.add_parser(
        "push",
        help="push the built images to a registry, verified by digest",
        description="Push every built image (or those named) to REGISTRY as REGISTRY/<name>:<tag>. "
        "The password comes from a file only its owner can read, or from standard input "
        "(--password-file -); it is never written to ~/.docker/config.json.",
    )
    _common(push)
    push.add_argument("--registry", required=True, metavar="URL", help="host[:port][/path], e.g. registry.example:5000")
    push.add_argument("--username", metavar="USER", help="registry user (with --password-file)")
    push.add_argument(
        "--password-file", metavar="FILE", help="file holding the password, mode 0600 (or '-' for standard input)"
    )
    push.add_argument(
        "--allow-dirty", action="store_true", help="also push images built from uncommitted changes (-dirty tags)"
    )
    return parser


def _common(parser) -> None:
    parser.add_argument(
        "images", nargs="*", metavar="IMAGE", help="image folder name, e.g. segmentation (default: all)"
    )
    parser.add_argument(
        "--images-dir", type=Path, metavar="DIR", help="folder holding the image folders (default: containers/)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def _size(size: int | None) -> str:
    return f"{size / 1e6:.0f} MB" if size else ""


def _planned(args, with_requirements: bool = True):
    image_set = spec.load_set(args.images_dir)
    if not image_set.problems and not args.images:
        where = paths.relative(image_set.images_dir)
        print(f"no image folder (with an image.yml) in {where}: nothing to {args.images_action}")
        return image_set, []
    order = spec.build_order(image_set, args.images or None)
    planned = revision.plan(order)
    if not with_requirements and args.images:
        planned = [item for item in planned if spec.selected_by(item.image, args.images)]
    return image_set, planned


def _build_arguments(values: list[str], planned) -> dict[str, str]:
    """--build-arg NAME=VALUE: each NAME declared by a selected Dockerfile, none the pipeline sets."""
    from ..images import variants

    declared = set().union(*(spec.declared_arguments(item.image.instructions()) for item in planned))
    managed = {item.image.build_arg for item in planned} | set(variants.APPLICATION_ARGS)
    arguments = {}
    for value in values:
        name, equals, given = value.partition("=")
        if not equals or not name:
            raise UsageError(f"--build-arg {value}: expected NAME=VALUE")
        if name in managed:
            raise UsageError(f"--build-arg {name}: the pipeline sets it (the exact tags and commands of the images)")
        if name not in declared:
            raise UsageError(
                f"--build-arg {name}: no selected Dockerfile declares ARG {name} "
                f"(declared: {', '.join(sorted(declared)) or 'none'})"
            )
        arguments[name] = given
    return arguments


def _finish(args, results, headers, row, notes) -> int:
    failed = [r for r in results if r.result == "FAIL"]
    not_run = [r for r in results if r.result == "not run"]
    if args.json:
        print(json.dumps({"failed": bool(failed), "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print(report.table(headers, [row(r) for r in results]))
        for note in notes(results):
            print(f"  {note}")
        print(f"\n{len(results)} images, {len(failed)} failed, {len(not_run)} not run")
    return 1 if failed else 0


def run_build(args) -> int:
    from ..images import build

    _, planned = _planned(args)
    if not planned:
        return 0
    overrides = _build_arguments(args.build_arg, planned)
    results = build.build_all(planned, verbose=args.verbose, nocache=args.no_cache, overrides=overrides)

    def notes(results):
        for r in results:
            if r.problem:
                yield f"{r.problem}"
                yield from (f"  | {line}" for line in r.tail)
            if r.reason:
                yield f"{r.planned.image.directory}: not built: {r.reason}"

    return _finish(
        args,
        results,
        ["image", "tag", "size", "seconds", "result"],
        lambda r: [r.planned.image.directory, r.planned.tag, _size(r.size), f"{r.seconds:.1f}", r.result],
        notes,
    )


def run_test(args) -> int:
    from ..images import testing

    image_set, planned = _planned(args, with_requirements=False)
    if not planned:
        return 0
    everything = revision.plan(spec.build_order(image_set))
    present = [item for item in everything if engine.image_present(item.reference)]
    tests_dir = args.tests_dir or paths.root() / "tests" / "images"
    results = testing.test_all(planned, tests_dir.resolve(), present)

    def notes(results):
        for r in results:
            for name, part in (("unit", r.unit), ("outside", r.outside)):
                if part.reason:
                    yield f"{r.planned.image.directory}: {name} {part.status}: {part.reason}"

    return _finish(
        args,
        results,
        ["image", "tag", "size", "unit", "outside", "seconds", "result"],
        lambda r: [
            r.planned.image.directory,
            r.planned.tag,
            _size(r.size),
            r.unit.status,
            r.outside.status,
            f"{r.seconds:.1f}",
            r.result,
        ],
        notes,
    )


def run_push(args) -> int:
    from ..images import push

    registry = push.parse_registry(args.registry)
    if bool(args.username) != bool(args.password_file):
        raise UsageError("give --username and --password-file together (the password never goes on a command line)")
    password = push.read_password(args.password_file) if args.password_file else None
    _, planned = _planned(args, with_requirements=False)
    if not planned:
        return 0
    dirty = [item.reference for item in planned if item.dirty]
    if dirty and not args.allow_dirty:
        raise UsageError(
            f"built from uncommitted changes: {', '.join(dirty)}; commit first (or --allow-dirty for a test registry)"
        )
    results = push.push_all(planned, registry, args.username, password)

    def notes(results):
        for r in results:
            if r.reason:
                yield f"{r.planned.image.directory}: {r.status}: {r.reason}"
            elif r.digest:
                yield f"{r.remote}@{r.digest}"

    return _finish(
        args,
        results,
        ["image", "tag", "size", "seconds", "result"],
        lambda r: [r.planned.image.directory, r.remote, _size(r.size), f"{r.seconds:.1f}", r.result],
        notes,
    )


def run(args) -> int:
    if args.images_action == "base":
        engine.ensure_base_images(args.tags or None, force=args.force)
        return 0
    handlers = {"build": run_build, "test": run_test, "push": run_push}
    try:
        return handlers[args.images_action](args)
    finally:
        sys.stdout.flush()
