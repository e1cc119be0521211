"""`primage images build`: every image on the local Docker engine, requirements first.

The engine is driven through its API with the `docker` SDK rather than the `docker` command:
the build answers a stream of JSON messages (step headers, output, the image id, an error with
its code), so progress, the failing step and its last lines come from data rather than from
parsing text meant for people, and registry credentials (push) travel per call, never through a
config file. The SDK drives the engine's classic builder, which keeps its layers as the cache a
warm build reuses (BuildKit-only syntax, RUN --mount and heredocs, is not available to it).
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field, replace

from .. import engine, paths
from ..errors import Problem
from . import variants
from .revision import Planned
from .spec import base_references, declared_arguments

BUILT, FAILED, NOT_RUN = "built", "FAIL", "not run"
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_PARSE_LINE = re.compile(r"line (\d+)")
TAIL_LINES = 15
BUILD_TIMEOUT = 3600  # seconds the engine may stay silent (a long RUN step) before the SDK gives up


def client():
    """The engine's API client (DOCKER_HOST honoured), started when no engine answers."""
    import docker

    engine.ensure_docker()
    return docker.from_env(timeout=BUILD_TIMEOUT).api


@dataclass
class BuildResult:
    planned: Planned
    status: str
    seconds: float = 0.0
    size: int | None = None
    image_id: str = ""
    steps: int = 0
    cached_steps: int = 0
    executed_steps: int = 0
    problem: Problem | None = None
    tail: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def result(self) -> str:
        if self.status == BUILT and self.executed_steps == 0:
            return "built (cached)"
        return self.status

    def as_dict(self) -> dict:
        return {
            "image": self.planned.image.directory,
            "reference": self.planned.reference,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "size": self.size,
            "image_id": self.image_id,
            "steps": self.steps,
            "cached_steps": self.cached_steps,
            "executed_steps": self.executed_steps,
            "problem": self.problem.as_dict() if self.problem else None,
            "tail": self.tail,
            "reason": self.reason,
        }


def ensure_base_images(planned: list[Planned]) -> None:
    """Bootstrap (or refresh, when the recipe or the extra CA bundle changed) every declared
    base image a Dockerfile builds FROM: build-time TLS interception needs the CA bundle in them."""
    declared = {base.tag: base for base in engine.base_images()}
    wanted: list[str] = []
    for item in planned:
        for reference in base_references(item.image.instructions()):
            if reference.resolved in declared and reference.resolved not in wanted:
                wanted.append(reference.resolved)
    for tag in wanted:
        outcome = engine.build_base_image(declared[tag])
        engine.progress(f"base image {tag}: {outcome}")


def build_all(
    planned: list[Planned], verbose: bool = False, nocache: bool = False, overrides: dict[str, str] | None = None
) -> list[BuildResult]:
    """Build in plan order; `overrides` are --build-arg values, each given to the Dockerfiles that declare it."""
    api = client()
    ensure_base_images(planned)
    results: dict[str, BuildResult] = {}
    for item in planned:
        broken = [r for r in item.image.requires if r in results and results[r].status != BUILT]
        if broken:
            results[item.image.directory] = BuildResult(
                item, NOT_RUN, reason=f"its requirement {', '.join(broken)} did not build"
            )
            engine.progress(f"{item.image.directory}: not built: requirement {', '.join(broken)} did not build")
            continue
        results[item.image.directory] = build_planned(api, item, verbose, nocache, overrides)
    return list(results.values())


def build_planned(
    api, item: Planned, verbose: bool = False, nocache: bool = False, overrides: dict[str, str] | None = None
) -> BuildResult:
    """One planned image with its final build arguments; a variant's production build is not run
    where its layer's apt source cannot be reached."""
    declared = declared_arguments(item.image.instructions())
    given = {name: value for name, value in (overrides or {}).items() if name in declared}
    if variants.is_variant(item):
        layer = item.image.base.layer
        if layer.apt_source and not item.test_build:
            why = variants.unreachable(variants.apt_source(item.image, given))
            if why:
                reason = f"{why}; the variant builds where it answers, and is tested here with a test build"
                engine.progress(f"{item.image.directory}: not built: {reason}")
                return BuildResult(item, NOT_RUN, reason=reason)
        item = replace(item, build_args={**variants.build_arguments(api, item), **given})
    elif given:
        item = replace(item, build_args={**item.build_args, **given})
    return build_one(api, item, verbose, nocache)


def log_file(directory: str, action: str):
    folder = paths.state_dir() / "images"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{directory}.{action}.log"


def build_one(api, item: Planned, verbose: bool = False, nocache: bool = False) -> BuildResult:
    import docker

    directory = item.image.directory
    instructions = item.image.instructions()
    log = log_file(directory, "build")
    engine.progress(f"{directory}: building {item.reference} (log: {paths.relative(log)})")
    result = BuildResult(item, FAILED)
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    step, step_text = 0, ""
    with open(log, "w", encoding="utf-8") as out:
        try:
            for message in api.build(
                path=str(item.image.folder),
                dockerfile="Dockerfile",
                tag=item.reference,
                buildargs=item.build_args,
                labels=item.labels,
                rm=True,
                forcerm=True,  # no intermediate container is left on the shared engine, even on failure
                pull=False,
                nocache=nocache,
                decode=True,
            ):
                text = message.get("stream", "")
                if text:
                    out.write(text)
                for line in text.splitlines():
                    header = _STEP.match(line)
                    if header:
                        step, result.steps, step_text = int(header.group(1)), int(header.group(2)), header.group(3)
                        tail.clear()
                        engine.progress(f"{directory}: step {step}/{result.steps}: {_short(step_text)}")
                    elif line.strip() == "---> Using cache":
                        result.cached_steps += 1
                    elif line.startswith(" ---> Running in "):
                        result.executed_steps += 1
                    elif line.strip() and not line.startswith(" ---> ") and not line.startswith("Removing "):
                        tail.append(line.rstrip())
                        if verbose:
                            print(f"    {line.rstrip()}", flush=True)
                if "aux" in message and "ID" in message["aux"]:
                    result.image_id = message["aux"]["ID"]
                if "error" in message:
                    error = message.get("errorDetail") or {}
                    out.write(f"\nERROR: {error.get('message') or message['error']}\n")
                    detail = (
                        f"exit code {error['code']}" if error.get("code") else error.get("message") or message["error"]
                    )
                    result.problem = _step_problem(item, instructions, step, result.steps, step_text, detail)
                    result.tail = list(tail)
        except docker.errors.APIError as exc:  # the engine refused the Dockerfile before building
            explanation = str(exc.explanation or exc)
            out.write(f"\nERROR: {explanation}\n")
            line = _PARSE_LINE.search(explanation)
            result.problem = Problem(
                paths.relative(item.image.dockerfile), explanation, int(line.group(1)) if line else None
            )
    result.seconds = time.monotonic() - start
    if result.problem is None and result.image_id:
        result.status = BUILT
        result.size = api.inspect_image(result.image_id)["Size"]
        engine.progress(
            f"{directory}: built {item.reference} in {result.seconds:.1f} s "
            f"({result.executed_steps} steps run, {result.cached_steps} from the cache)"
        )
    elif result.problem is None:
        result.problem = Problem(paths.relative(item.image.dockerfile), "the engine reported no image id")
    if result.status == FAILED:
        engine.progress(f"{directory}: FAILED: {result.problem}")
        for line in result.tail:
            engine.progress(f"{directory}:   | {line}")
    return result


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _step_problem(item: Planned, instructions, step: int, steps: int, step_text: str, detail: str) -> Problem:
    """The failing step as file:line. Step N of the classic builder is the Nth instruction (ARGs
    before FROM included); the labels the pipeline adds are one last step of its own."""
    display = paths.relative(item.image.dockerfile)
    if 1 <= step <= len(instructions):
        instruction = instructions[step - 1]
        return Problem(
            display,
            f"step {step}/{steps} `{_short(instruction.keyword + ' ' + instruction.arguments, 80)}` failed: {detail}",
            instruction.line,
        )
    return Problem(display, f"step {step}/{steps} `{_short(step_text, 80)}` failed: {detail}")
