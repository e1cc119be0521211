#!/usr/bin/env python3
"""Benchmark image builds: cold (no layer cache) and warm time and size of each image.

Side by side in one run, for each image of containers/ (requirements first): the pipeline's
build (`primage images build`, through the engine API) and the bare tool (`docker build` with
the classic builder, the same build arguments and labels), cold and warm, medians of several
runs, and the ratio of the pipeline to the bare tool. Sizes as the engine reports them.

    .venv/bin/python scripts/benchmark_images.py [--runs 3] [--cold-runs 1] [IMAGE ...]
    .venv/bin/python scripts/benchmark_images.py --images-dir tests/fixtures/images tool app

Cold builds leave the previous image of the tag dangling: the script removes every image it
made except the final tagged ones, and the bare tool's tags (primage-benchmark/...).

Variants (`segmentation+onedata`) are built as the pipeline builds them, with the application's
recorded command; one whose apt source does not answer from here is measured as its test build
(the layer's stub packages served to the build, as `primage images test` does), marked so.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from primage import report
from primage.images import build, revision, spec, variants


def bare_reference(item: revision.Planned) -> str:
    return f"primage-benchmark/{item.image.directory.replace('+', '-')}:{item.tag}"


def bare_build(item: revision.Planned, nocache: bool) -> tuple[float, str]:
    """`docker build` of the same folder with the classic builder: (seconds, image id)."""
    reference = bare_reference(item)
    command = ["docker", "build", "--quiet", "--pull=false", "--tag", reference, "--file", "Dockerfile"]
    command += [f"--build-arg={key}={value}" for key, value in item.build_args.items()]
    command += [f"--label={key}={value}" for key, value in item.labels.items()]
    command += ["--no-cache"] if nocache else []
    start = time.monotonic()
    completed = subprocess.run(
        [*command, "."],
        cwd=item.image.folder,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - start
    if completed.returncode != 0:
        raise SystemExit(f"docker build of {item.image.directory} failed: {completed.stderr.strip()[-500:]}")
    return seconds, completed.stdout.strip()


def pipeline_build(api, item: revision.Planned, nocache: bool) -> tuple[float, build.BuildResult]:
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
        result = build.build_one(api, item, nocache=nocache)
    if result.status != build.BUILT:
        raise SystemExit(f"primage build of {item.image.directory} failed: {result.problem}")
    return result.seconds, result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("--images-dir", type=Path, help="folder of image folders (default: containers/)")
    parser.add_argument("--runs", type=int, default=3, help="warm builds per image and tool (default: 3)")
    parser.add_argument("--cold-runs", type=int, default=1, help="cold builds per image and tool (default: 1)")
    args = parser.parse_args()
    image_set = spec.load_set(args.images_dir)
    if not image_set.problems:
        print(f"no image folder in {image_set.images_dir}; try --images-dir tests/fixtures/images tool app")
        return 0
    planned = revision.plan(spec.build_order(image_set, args.images or None))
    api = build.client()
    build.ensure_base_images(planned)
    made: set[str] = set()
    rows = []
    stubs = contextlib.ExitStack()
    served: dict[str, dict[str, str]] = {}
    for index, item in enumerate(planned):
        if variants.is_variant(item):
            layer = item.image.base
            if layer.layer.apt_source and variants.unreachable(variants.apt_source(item.image)):
                if layer.directory not in served:
                    served[layer.directory] = stubs.enter_context(variants.stub_repository(api, layer))
                item = variants.as_test_build(item, served[layer.directory])
            item = dataclasses.replace(item, build_args=variants.build_arguments(api, item))
            planned[index] = item
        cold, cold_bare, warm, warm_bare = [], [], [], []
        for _ in range(args.cold_runs):
            seconds, result = pipeline_build(api, item, nocache=True)
            cold.append(seconds)
            made.add(result.image_id)
            seconds, image_id = bare_build(item, nocache=True)
            cold_bare.append(seconds)
            made.add(image_id)
        for _ in range(args.runs):
            seconds, result = pipeline_build(api, item, nocache=False)
            warm.append(seconds)
            seconds, _ = bare_build(item, nocache=False)
            warm_bare.append(seconds)
        final = result.image_id  # the tagged image the next images build on
        rows.append(
            [
                item.image.directory + (" (test build)" if item.test_build else ""),
                f"{result.size / 1e6:.0f} MB",
                f"{median(cold):.1f}",
                f"{median(cold_bare):.1f}",
                f"{median(cold) / median(cold_bare):.2f}",
                f"{median(warm):.2f}",
                f"{median(warm_bare):.2f}",
                f"{median(warm) / median(warm_bare):.2f}",
            ]
        )
        made.discard(final)
        print(f"{item.image.directory}: done", file=sys.stderr, flush=True)
    stubs.close()
    for item in planned:
        with contextlib.suppress(Exception):
            api.remove_image(bare_reference(item))
    for image_id in made:
        with contextlib.suppress(Exception):  # still in use as a parent or by another tag: keep it
            api.remove_image(image_id)
    print(
        report.table(
            ["image", "size", "cold s", "bare cold s", "ratio", "warm s", "bare warm s", "ratio"],
            rows,
        )
    )
    print(
        f"\nmedians of {args.cold_runs} cold and {args.runs} warm builds per image; bare = docker build "
        "(classic builder, same build arguments and labels); ratio = primage / bare"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
