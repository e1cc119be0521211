"""`primage images test`: each image's unit tests inside it, then its tests from outside.

Inside: the argv of `test.unit` (image.yml) runs as the container's command, the image's own
entrypoint replaced by its first word so the argv runs exactly as written, with no network
(unit tests are hermetic). Outside: `pytest tests/images/<dir>` with PRIMAGE_TEST_IMAGE set to
the exact tag, and PRIMAGE_IMAGE_<DIR> for every image present at this revision. A part that
cannot run is `not run` with its reason, never a pass.

A variant whose layer has stub packages is tested as its test build (see variants.py), made
here from the application image of this revision: inside, the layer's test.unit; outside,
`pytest tests/images/<layer>/test_*.py` plus `tests/images/<layer>/<application>/` when that
folder exists, with PRIMAGE_TEST_APPLICATION (the application's folder name) and
PRIMAGE_TEST_APPLICATION_IMAGE (its exact tag) beside PRIMAGE_TEST_IMAGE.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from .. import engine, paths
from ..errors import PrimageError
from . import variants
from .build import BUILT, build_planned, client, log_file
from .revision import Planned

PASSED, FAILED, NOT_RUN = "pass", "FAIL", "not run"
UNIT_TIMEOUT = 1800  # seconds


@dataclass
class Part:
    status: str
    reason: str = ""
    seconds: float = 0.0


@dataclass
class TestResult:
    planned: Planned
    unit: Part
    outside: Part
    size: int | None = None

    @property
    def seconds(self) -> float:
        return self.unit.seconds + self.outside.seconds

    @property
    def result(self) -> str:
        statuses = {self.unit.status, self.outside.status}
        return FAILED if FAILED in statuses else NOT_RUN if NOT_RUN in statuses else PASSED

    def as_dict(self) -> dict:
        return {
            "image": self.planned.image.directory,
            "reference": self.planned.reference,
            "result": self.result,
            "unit": vars(self.unit),
            "outside": vars(self.outside),
        }


def image_variable(directory: str) -> str:
    """PRIMAGE_IMAGE_SEGMENTATION, PRIMAGE_IMAGE_SEGMENTATION_ONEDATA (segmentation+onedata)."""
    return "PRIMAGE_IMAGE_" + re.sub(r"[^A-Z0-9]", "_", directory.upper())


def test_all(planned: list[Planned], tests_dir: Path, present: list[Planned]) -> list[TestResult]:
    """Test `planned`; `present` are every image found at its current tag (for PRIMAGE_IMAGE_<DIR>)."""
    api = client()
    environment = {image_variable(item.image.directory): item.reference for item in present}
    results = []
    with contextlib.ExitStack() as stubs:
        served: dict[str, dict[str, str] | PrimageError] = {}
        for item in planned:
            if variants.is_variant(item) and item.image.base.layer.has_test_build:
                item, failure = _test_build(api, item, stubs, served)
                if failure:
                    results.append(failure)
                    continue
            results.append(_test_one(api, item, tests_dir, environment))
    return results


def ensure_test_build(application: str, layer: str = "onedata") -> str:
    """The test build of the application's variant at this revision (`<variant tag>-test`), made
    here when it is missing (with the application image it builds on): for tests outside the
    pipeline that run the variant, such as pod mode on the test cluster."""
    from . import build, revision, spec

    engine.ensure_docker()
    planned = revision.plan(spec.build_order(spec.load_set(), [application], with_variants=True))
    key = f"{application}+{layer}"
    item = next((p for p in planned if p.image.directory == key), None)
    if item is None or not item.image.base.layer.has_test_build:
        raise PrimageError(
            f"containers/{application} has no {layer} variant with a test build (its image.yml lists no "
            f"`variants: [{layer}]`, or the layer declares no stub packages)"
        )
    wanted = variants.as_test_build(item, {}).reference
    if engine.image_present(wanted):
        return wanted
    bases = [p for p in planned if not variants.is_variant(p)]
    if not engine.image_present(item.build_args[variants.APP_IMAGE_ARG]):
        broken = [r for r in build.build_all(bases) if r.status != BUILT]
        if broken:
            raise PrimageError(f"the {application} image did not build: {broken[0].problem or broken[0].reason}")
    engine.progress(f"{key}: the test build {wanted} is missing: building it")
    with contextlib.ExitStack() as stubs:
        made, failure = _test_build(client(), item, stubs, {})
    if failure is not None:
        raise PrimageError(f"{key}: {failure.unit.reason}")
    return made.reference


def _test_build(api, item: Planned, stubs: contextlib.ExitStack, served: dict) -> tuple[Planned, TestResult | None]:
    """The test build of a variant, its layer's stub repository served once for all its variants."""
    layer = item.image.base
    test_item = variants.as_test_build(item, {})
    application = item.build_args[variants.APP_IMAGE_ARG]
    if not engine.image_present(application):
        reason = f"{application} is not built; run `primage images build {item.image.application.directory}` first"
        engine.progress(f"{item.image.directory}: FAIL: {reason}")
        return test_item, TestResult(test_item, Part(FAILED, reason), Part(NOT_RUN, "no test build"))
    if layer.directory not in served:
        try:
            served[layer.directory] = stubs.enter_context(variants.stub_repository(api, layer))
        except PrimageError as exc:
            served[layer.directory] = exc
    stub = served[layer.directory]
    if isinstance(stub, PrimageError):
        return test_item, TestResult(test_item, Part(FAILED, str(stub)), Part(NOT_RUN, "no test build"))
    test_item = variants.as_test_build(item, stub)
    built = build_planned(api, test_item)
    if built.status != BUILT:
        reason = f"the test build failed: {built.problem or built.reason}"
        return test_item, TestResult(test_item, Part(FAILED, reason), Part(NOT_RUN, "no test build"))
    return test_item, None


def _test_one(api, item: Planned, tests_dir: Path, environment: dict[str, str]) -> TestResult:
    directory = item.image.directory
    try:
        size = api.inspect_image(item.reference)["Size"]
    except Exception:  # not built: the tests of a stale or missing image prove nothing
        reason = f"{item.reference} is not built; run `primage images build {directory}` first"
        engine.progress(f"{directory}: FAIL: {reason}")
        return TestResult(item, Part(FAILED, reason), Part(NOT_RUN, "the image is not built"))
    unit = run_unit(api, item)
    outside = run_outside(item, tests_dir, environment)
    return TestResult(item, unit, outside, size)


def run_unit(api, item: Planned) -> Part:
    directory = item.image.directory
    argv = item.image.unit
    if not argv:
        return _announce(
            directory, "unit", Part(NOT_RUN, f"{paths.relative(item.image.spec_file)} declares no test.unit")
        )
    name = f"primage-test-{re.sub(r'[^A-Za-z0-9_.-]', '-', directory)}-unit-{secrets.token_hex(3)}"
    engine.progress(f"{directory}: unit tests inside {item.reference}: {' '.join(argv)}")
    start = time.monotonic()
    try:
        code, log = _run_container(api, item.reference, argv, name, directory)
    except docker.errors.APIError as exc:  # e.g. the command is not in the image
        reason = f"`{' '.join(argv)}` could not start: {exc.explanation or exc}"
        return _announce(directory, "unit", Part(FAILED, reason, time.monotonic() - start))
    seconds = time.monotonic() - start
    if code == 0:
        return _announce(directory, "unit", Part(PASSED, seconds=seconds))
    reason = f"`{' '.join(argv)}` exited {code} (output above; log: {paths.relative(log)})"
    return _announce(directory, "unit", Part(FAILED, reason, seconds))


def _run_container(api, reference: str, argv: list[str], name: str, directory: str) -> tuple[int, Path]:
    """Run argv in a fresh container of `reference`, its output shown and logged; always removed."""
    log = log_file(directory, "unit")
    container = api.create_container(
        reference,
        command=argv[1:],
        entrypoint=[argv[0]],
        name=name,
        network_disabled=True,
        labels={"org.primage.test": directory},
    )
    try:
        api.start(container)
        with open(log, "wb") as out:
            for chunk in api.logs(container, stream=True, follow=True):
                out.write(chunk)
                _show(chunk.decode(errors="replace"))
        status = api.wait(container, timeout=UNIT_TIMEOUT)
    finally:
        api.remove_container(container, force=True)
    return status.get("StatusCode", -1), log


def _show(text: str) -> None:
    """Test output goes with the progress to stderr: stdout stays for the table or the JSON."""
    sys.stderr.write("".join(f"    | {line}" for line in text.splitlines(keepends=True)))
    sys.stderr.flush()


def outside_tests(item: Planned, tests_dir: Path) -> tuple[Path, list[Path]]:
    """The folder of an image's tests from outside and what pytest runs there: the folder itself,
    or for a variant its layer's test_*.py and its application's sub-folder."""
    if not variants.is_variant(item):
        folder = tests_dir / item.image.directory
        return folder, [folder]
    folder = tests_dir / item.image.base.directory
    specific = folder / item.image.application.directory
    return folder, sorted(folder.glob("test_*.py")) + ([specific] if specific.is_dir() else [])


def run_outside(item: Planned, tests_dir: Path, environment: dict[str, str]) -> Part:
    directory = item.image.directory
    folder, targets = outside_tests(item, tests_dir)
    if not folder.is_dir():
        return _announce(
            directory, "outside", Part(NOT_RUN, f"no {paths.relative(folder)}/ folder of tests from outside the image")
        )
    if not any(path.is_file() or any(path.rglob("test_*.py")) for path in targets):
        return _announce(directory, "outside", Part(NOT_RUN, f"no test_*.py in {paths.relative(folder)}/"))
    shown = " ".join(paths.relative(path) for path in targets)
    engine.progress(f"{directory}: tests from outside: pytest {shown}")
    start = time.monotonic()
    env = {**os.environ, **environment, "PRIMAGE_TEST_IMAGE": item.reference}
    if variants.is_variant(item):
        env["PRIMAGE_TEST_APPLICATION"] = item.image.application.directory
        env["PRIMAGE_TEST_APPLICATION_IMAGE"] = item.build_args[variants.APP_IMAGE_ARG]
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *map(str, targets)]
    with subprocess.Popen(
        command, cwd=paths.root(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as pytest_run:
        for line in pytest_run.stdout:
            _show(line)
    completed = pytest_run
    seconds = time.monotonic() - start
    if completed.returncode == 0:
        return _announce(directory, "outside", Part(PASSED, seconds=seconds))
    if completed.returncode == 5:
        return _announce(directory, "outside", Part(FAILED, f"pytest collected no test in {shown}", seconds))
    return _announce(directory, "outside", Part(FAILED, f"pytest {shown} exited {completed.returncode}", seconds))


def _announce(directory: str, part: str, outcome: Part) -> Part:
    detail = f": {outcome.reason}" if outcome.reason else ""
    engine.progress(f"{directory}: {part} tests {outcome.status}{detail}")
    return outcome
