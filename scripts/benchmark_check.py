#!/usr/bin/env python3
"""Benchmark `primage check` over every TOSCA and RADL template and input case.

Runs the real command (a fresh process each time, as a user or CI would) several times
and prints the wall time of each run, the median, and the median time per template
(a TOSCA template with its input cases, a RADL template, a composition). The budget
is 20 s of wall time on a 2-core machine.

    .venv/bin/python scripts/benchmark_check.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

KINDS = ["tosca-template", "tosca-case", "tosca-types", "radl-template", "radl-composition"]
BUDGET_SECONDS = 20.0


def one_run(primage: Path) -> tuple[float, dict]:
    start = time.monotonic()
    completed = subprocess.run([str(primage), "check", *KINDS, "--json"], capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if completed.returncode not in (0, 1):
        sys.exit(f"primage check failed to run:\n{completed.stderr}")
    return wall, json.loads(completed.stdout)


def owner(piece: dict) -> str:
    if piece["kind"] == "tosca-case":
        return "tosca/" + piece["name"].rsplit("-", 1)[0]
    prefix = {
        "tosca-template": "tosca/",
        "tosca-types": "tosca/types/",
        "radl-template": "radl/",
        "radl-composition": "radl/ci/",
    }[piece["kind"]]
    return prefix + piece["name"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    primage = Path(sys.executable).parent / "primage"
    one_run(primage)  # warm the file cache and the Python bytecode cache
    walls = []
    per_owner: dict[str, list[float]] = defaultdict(list)
    failed = False
    for index in range(args.runs):
        wall, report = one_run(primage)
        walls.append(wall)
        failed |= report["failed"]
        totals: dict[str, float] = defaultdict(float)
        for piece in report["pieces"]:
            totals[owner(piece)] += sum(r["seconds"] for r in piece["results"])
        for name, seconds in totals.items():
            per_owner[name].append(seconds)
        print(f"run {index + 1}: {wall:6.2f} s wall, {len(report['pieces'])} pieces")
    median = statistics.median(walls)
    print(
        f"\nprimage check over {len(report['pieces'])} pieces: median {median:.2f} s wall "
        f"(min {min(walls):.2f}, max {max(walls):.2f}; budget {BUDGET_SECONDS:.0f} s: "
        f"{'within' if median <= BUDGET_SECONDS else 'OVER'})"
    )
    print("\nmedian check time per template (its input cases included):")
    for name, seconds in sorted(per_owner.items(), key=lambda item: -statistics.median(item[1])):
        print(f"  {name:34} {statistics.median(seconds):6.2f} s")
    if failed:
        print("\nnote: some checks failed; run `primage check` to see them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
