#!/usr/bin/env python3
"""Benchmark the Molecule matrix: `primage test roles` over every role and platform.

Prints the wall time of the whole matrix, and per role and platform the time of each
stage. The budget is 15 minutes of wall time on a 2-core machine.

    .venv/bin/python scripts/benchmark_roles.py [--jobs 2] [ROLE ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BUDGET_SECONDS = 15 * 60
STAGES = ("create", "converge", "idempotence", "side_effect", "verify", "destroy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("roles", nargs="*")
    args = parser.parse_args()
    primage = Path(sys.executable).parent / "primage"
    start = time.monotonic()
    completed = subprocess.run(
        [str(primage), "test", "roles", "--jobs", str(args.jobs), "--json", *args.roles],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = time.monotonic() - start
    runs = json.loads(completed.stdout or "[]")
    print(f"{'role':16} {'platform':16} " + " ".join(f"{s:>11}" for s in STAGES) + f" {'total':>7}")
    for run in runs:
        cells = []
        for stage in STAGES:
            result = run["stages"].get(stage)
            cells.append(
                f"{result['status']} {result['seconds']:.0f}s"
                if result and result["status"] in ("ok", "FAIL")
                else (result["status"] if result else "not run")
            )
        print(
            f"{run['role']:16} {run['platform']:16} "
            + " ".join(f"{c:>11}" for c in cells)
            + f" {run['seconds']:>6.0f}s"
        )
    print(
        f"\nMolecule matrix: {wall / 60:.1f} min wall with {args.jobs} jobs "
        f"(budget {BUDGET_SECONDS // 60} min: {'within' if wall <= BUDGET_SECONDS else 'OVER'}); "
        f"exit {completed.returncode}"
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
