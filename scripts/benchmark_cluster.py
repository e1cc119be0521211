#!/usr/bin/env python3
"""Benchmark the test cluster: builds, up and down, memory, and an Indexed Job against bare Docker.

Prints, as tables:
  - build time per component: warm (the cache as it is) and, with --cold, from an empty
    cache (a temporary PRIMAGE_CACHE: every module downloaded again, nothing compiled);
  - `up` and `down` wall times, medians of --cycles runs (budget: up 60 s, down 30 s);
  - resident memory of the stack (components and containerd shims) with the Job's pods gone;
  - an Indexed Job of --tasks tasks at --parallelism, submit to Complete, beside the same
    containers run by a bare `docker run` loop at the same parallelism, medians of --repeat
    runs each, alternated, and their ratio.

    sudo .venv/bin/python scripts/benchmark_cluster.py [--cold] [--cycles 3] [--tasks 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from primage import cluster, engine, paths, report

UP_BUDGET, DOWN_BUDGET = 60.0, 30.0
TEST_IMAGE_DIR = paths.root() / "tests" / "cluster" / "image"
TASK = 'i=${JOB_COMPLETION_INDEX:-$TASK_INDEX}; python3 -c "import sys; print(sum(range(10**6)), sys.argv[1])" $i'


def build_times(cold: bool) -> list[list[str]]:
    rows = []
    if cold:
        with tempfile.TemporaryDirectory(prefix="primage-cold-cache-") as cache:
            env = {**os.environ, "PRIMAGE_CACHE": cache}
            env.pop("GOMODCACHE", None)
            env.pop("GOCACHE", None)
            for outcome in _build_json(env):
                rows.append([outcome["component"], "cold", f"{outcome['seconds']:.0f}"])
            subprocess.run(["chmod", "-R", "u+w", cache], check=False)  # Go's module cache is read-only
    for outcome in _build_json(dict(os.environ)):
        rows.append([outcome["component"], "warm", f"{outcome['seconds']:.1f}"])
    return rows


def _build_json(env: dict[str, str]) -> list[dict]:
    code = "import json; from primage import cluster; print(json.dumps([o.__dict__ for o in cluster.build()]))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cycle_times(cycles: int, image: str) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for _ in range(cycles):
        start = time.monotonic()
        cluster.up(images=[image])
        ups.append(time.monotonic() - start)
        start = time.monotonic()
        cluster.down()
        downs.append(time.monotonic() - start)
    return ups, downs


def resident_mib() -> tuple[float, float]:
    current = cluster.status()
    components_mib = sum(p["rss_mib"] for p in current["processes"])
    return components_mib, current["shims_rss_mib"]


def indexed_job_seconds(layout: cluster.Layout, image: str, tasks: int, parallelism: int, run: int) -> float:
    name = f"bench-{run}"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": tasks,
            "parallelism": parallelism,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "task", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", TASK]}
                    ],
                }
            },
        },
    }
    start = time.monotonic()
    cluster.kubectl(layout, "create", "-f", "-", stdin=json.dumps(job))
    complete = 'jsonpath={.status.conditions[?(@.type=="Complete")].status}'
    while cluster.kubectl(layout, "get", "job", name, "-o", complete).stdout != "True":
        time.sleep(0.2)
    seconds = time.monotonic() - start
    cluster.kubectl(layout, "delete", "job", name, "--cascade=foreground", "--wait=true", timeout=300)
    return seconds


def docker_loop_seconds(image: str, tasks: int, parallelism: int, run: int) -> float:
    def one(index: int) -> None:
        subprocess.run(
            ["docker", "run", "--rm", "--name", f"primage-cluster-bench-{run}-{index}", "-e", f"TASK_INDEX={index}",
             image, "sh", "-c", TASK],
            capture_output=True, check=True,
        )  # fmt: skip

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(one, range(tasks)))
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="also build from an empty cache (15-30 minutes)")
    parser.add_argument("--cycles", type=int, default=3, help="up/down cycles (default 3)")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--parallelism", type=int, default=4, help="default 4: the templates' htc_parallelism")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the Job and of the docker loop (default 3)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the cluster needs it)")

    print(report.table(["component", "cache", "seconds"], build_times(args.cold)))
    engine.ensure_docker()
    engine.ensure_base_images(["debian:trixie-slim"])
    image = engine.build_folder_image(TEST_IMAGE_DIR, "primage-cluster-test")

    ups, downs = cycle_times(args.cycles, image)
    print()
    print(
        report.table(
            ["step", "median s", "runs", "budget s", "within"],
            [
                ["up (node Ready)", f"{statistics.median(ups):.1f}", " ".join(f"{u:.1f}" for u in ups), UP_BUDGET,
                 "yes" if statistics.median(ups) <= UP_BUDGET else "NO"],
                ["down (host restored)", f"{statistics.median(downs):.1f}", " ".join(f"{d:.1f}" for d in downs),
                 DOWN_BUDGET, "yes" if statistics.median(downs) <= DOWN_BUDGET else "NO"],
            ],
        )
    )  # fmt: skip

    layout = cluster.Layout()
    cluster.up(images=[image])
    try:
        time.sleep(10)  # let the start-up settle before reading memory
        stack, shims = resident_mib()
        print(
            f"\nresident memory: components {stack:.0f} MiB + containerd shims {shims:.0f} MiB "
            f"= {stack + shims:.0f} MiB"
        )
        job_times, docker_times = [], []
        for run in range(args.repeat):
            job_times.append(indexed_job_seconds(layout, image, args.tasks, args.parallelism, run))
            docker_times.append(docker_loop_seconds(image, args.tasks, args.parallelism, run))
    finally:
        cluster.down()
    job, bare = statistics.median(job_times), statistics.median(docker_times)
    print()
    print(
        report.table(
            ["runner", f"{args.tasks} tasks x{args.parallelism}, median s", "runs"],
            [
                ["Indexed Job (submit to Complete)", f"{job:.1f}", " ".join(f"{t:.1f}" for t in job_times)],
                ["bare docker run loop", f"{bare:.1f}", " ".join(f"{t:.1f}" for t in docker_times)],
            ],
        )
    )
    print(f"\nratio Indexed Job / docker run loop: {job / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
