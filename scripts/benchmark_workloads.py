#!/usr/bin/env python3
"""Benchmark the rendering of the HTC workload (src/primage/workloads.py) by input count.

For each count of input files it renders the htc_batch manifests in-process with Ansible's
templating engine (as the role does) several times and prints the median wall time, the number
of Jobs and ConfigMaps and the size of the input list, beside the bare serialisation of the same
objects with libyaml (the floor any renderer pays) and the ratio between the two. A cold run
(a fresh Python process: imports, plugin loading, first render) is measured for the largest
count. The aim: ten thousand inputs in under a second, one Job and one ConfigMap.

    .venv/bin/python scripts/benchmark_workloads.py [--runs 5] [--counts 100,1000,10000,15000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import yaml

from primage import report, workloads

IMAGE = "registry.primage.example:5000/primage/segmentation:0.1.0-1a2b3c4"
BUDGET_SECONDS = 1.0


def values(count: int) -> dict:
    return {"htc_batch_image": IMAGE, "htc_batch_inputs": [f"inputs/patient-{i:06d}/t1.nii.gz" for i in range(count)]}


def median_seconds(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_seconds(count: int, runs: int) -> float:
    script = (
        "import sys, time; start = time.perf_counter()\n"
        "from primage import workloads\n"
        f"image, count = {IMAGE!r}, int(sys.argv[1])\n"
        "inputs = [f'inputs/patient-{i:06d}/t1.nii.gz' for i in range(count)]\n"
        "workloads.render('htc_batch', {'htc_batch_image': image, 'htc_batch_inputs': inputs})\n"
        "print(time.perf_counter() - start)\n"
    )
    times = []
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-c", script, str(count)], capture_output=True, text=True, check=True
        )
        times.append(float(completed.stdout.strip()))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--counts", default="100,1000,10000,15000")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    workloads.render("htc_batch", values(1))  # load Ansible's plugins once, as a long-lived caller would
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    rows = []
    over_budget = False
    for count in counts:
        print(f"rendering {count} inputs x {args.runs}", file=sys.stderr, flush=True)
        given = values(count)
        workload = workloads.render("htc_batch", given)
        kinds = workload.kinds()
        size = len(workload.of_kind("ConfigMap")[0].definition["data"]["inputs.txt"].encode())
        render = median_seconds(lambda given=given: workloads.render("htc_batch", given), args.runs)
        documents = [m.definition for m in workload.manifests]
        bare = median_seconds(lambda documents=documents: yaml.dump_all(documents, Dumper=dumper), args.runs)
        over_budget |= count <= 10_000 and render > BUDGET_SECONDS
        rows.append(
            [
                count,
                kinds.get("Job", 0),
                kinds.get("ConfigMap", 0),
                f"{size / 1024:.0f} KiB",
                f"{render:.3f}",
                f"{bare:.3f}",
                f"{render / bare:.1f}x" if bare else "-",
            ]
        )
    headers = ["inputs", "Jobs", "ConfigMaps", "list size", "render s (median)", "libyaml dump s", "ratio"]
    print(report.table(headers, rows))
    cold = cold_seconds(counts[-1], max(1, args.runs // 2))
    print(f"\ncold render of {counts[-1]} inputs in a fresh process (imports included): {cold:.2f} s (median)")
    print(f"budget: {BUDGET_SECONDS:.1f} s for up to 10000 inputs, warm: {'exceeded' if over_budget else 'met'}")
    return 1 if over_budget else 0


if __name__ == "__main__":
    sys.exit(main())
