#!/usr/bin/env python3
"""Benchmark one segmentation task: wall time and peak memory of a 256x256x128 volume on one core.

Builds the segmentation image with the pipeline (`primage images build segmentation`: warm
when nothing changed), writes one phantom with the image's own `sample` command, then runs
the task with `docker run --cpus 1` and prints, medians of --runs runs: the wall time of the
whole container run, the task's own time (its record), a bare `docker run IMAGE true` for the
container start-up it includes, and the task's peak memory (RSS of the process, and the
container's cgroup peak). The aim is under 10 s and 1 GiB.

    .venv/bin/python scripts/benchmark_segmentation.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from primage import engine
from primage.images import build, revision, spec

SHAPE = "256,256,128"
APP_UID = 1000
MOUNT = "/mnt/onedata"

# Runs the task in the container and reports the peak RSS of its process (KiB) and of the cgroup.
MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
cgroup = None
for path in ("/sys/fs/cgroup/memory/memory.max_usage_in_bytes", "/sys/fs/cgroup/memory.peak"):
    try:
        cgroup = int(open(path).read())
        break
    except OSError:
        pass
print(json.dumps({"code": done.returncode, "rss_kib": peak_kib, "cgroup_bytes": cgroup, "err": done.stderr[-500:]}))
"""


def docker_run(*arguments: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    done = subprocess.run(["docker", "run", "--rm", *arguments], capture_output=True, text=True, check=False)
    return time.monotonic() - start, done


def segmentation_figures(image: str, runs: int) -> dict:
    space = Path(tempfile.mkdtemp(prefix="primage-bench-space-"))
    try:
        shutil.chown(space, APP_UID, APP_UID)
        _, made = docker_run(
            "-v", f"{space}:{MOUNT}", image, "primage-segment", "sample", MOUNT, "--count", "1", "--shape", SHAPE
        )
        if made.returncode != 0:
            sys.exit(f"sample failed: {made.stderr}")
        case = json.loads((space / "sample.json").read_text())["cases"][0]
        task = ["primage-segment", "run", f"{MOUNT}/{case['input']}", "--input-root", MOUNT]
        task += ["--output-dir", f"{MOUNT}/outputs", "--force"]
        walls, totals, rss, cgroup, bare = [], [], [], [], []
        for index in range(runs):
            engine.progress(f"segmentation of a {SHAPE} volume on one core: run {index + 1}/{runs}")
            wall, done = docker_run("--cpus", "1", "-v", f"{space}:{MOUNT}", image, "python3", "-c", MEASURE, *task)
            facts = json.loads(done.stdout)
            if facts["code"] != 0:
                sys.exit(f"the task failed: {facts['err']}")
            stem = case["input"].removesuffix(".gz").removesuffix(".nii")
            record = json.loads((space / "outputs" / stem / "segmentation.json").read_text())
            walls.append(wall)
            totals.append(record["timings_s"]["total"])
            rss.append(facts["rss_kib"] / 1024)
            cgroup.append((facts["cgroup_bytes"] or 0) / 2**20)
            bare.append(docker_run("--cpus", "1", image, "true")[0])
        return {
            "wall": statistics.median(walls),
            "task": statistics.median(totals),
            "bare": statistics.median(bare),
            "rss": statistics.median(rss),
            "cgroup": statistics.median(cgroup),
            "timings": record["timings_s"],
            "volume_ml": record["volume_ml"],
            "truth_ml": case["truth_volume_ml"],
        }
    finally:
        docker_run("-v", f"{space}:/work", "--user", "0", image, "rm", "-rf", "/work/outputs", "/work/inputs")
        shutil.rmtree(space, ignore_errors=True)


def segmentation_image() -> str:
    """The pipeline's exact reference of the segmentation image, built (or found warm) first."""
    planned = revision.plan(spec.build_order(spec.load_set(), ["segmentation"]))
    results = build.build_all(planned)
    failed = [r for r in results if r.status != build.BUILT]
    if failed:
        sys.exit(f"building {failed[0].planned.image.directory} failed: {failed[0].reason}")
    return planned[-1].reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="task runs to take the median of")
    args = parser.parse_args()
    image = segmentation_image()
    task = segmentation_figures(image, args.runs)
    print(f"\nsegmentation of one {SHAPE} volume with {image}, --cpus 1, median of {args.runs} runs:")
    print(f"  container run, wall            {task['wall']:6.2f} s   (aim: under 10 s)")
    print(f"  the task itself (its record)   {task['task']:6.2f} s   ({task['task'] / task['wall']:.0%} of the run)")
    print(f"  bare `docker run IMAGE true`   {task['bare']:6.2f} s   (container start-up, in the run above)")
    print(f"  peak memory, task process RSS  {task['rss']:6.0f} MiB (aim: under 1024 MiB)")
    print(f"  peak memory, container cgroup  {task['cgroup']:6.0f} MiB (with the page cache)")
    steps = ", ".join(f"{k} {v:.2f}" for k, v in task["timings"].items() if k != "total")
    print(f"  steps (s): {steps}")
    print(f"  lesion {task['volume_ml']:.1f} mL found, {task['truth_ml']:.1f} mL true")
    return 0


if __name__ == "__main__":
    sys.exit(main())
