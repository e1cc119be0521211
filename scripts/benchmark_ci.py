#!/usr/bin/env python3
"""Time `.ci/run` stage by stage: scripts/setup.sh, then every tox env of tox.ini's env_list.

Prints a table of stage, result and minutes, the total against CI's budgets (60 minutes cold,
20 warm; the CI job's hard limit is 90), and the machine's load while it ran. Warm means the
caches of an earlier run are there (~/.cache/primage, the Docker engine's images and layers);
a cold figure needs a fresh machine, or `PRIMAGE_CACHE=$(mktemp -d)` and an engine without the
project's images.

    .venv/bin/python scripts/benchmark_ci.py [--skip-setup] [--env ENV]...
"""

from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLD_BUDGET, WARM_BUDGET = 60, 20


def env_list() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "tox.ini")
    return [name.strip() for name in config["tox"]["env_list"].split(",") if name.strip()]


def timed(command: list[str], log: Path) -> tuple[int, float, float]:
    """(exit code, seconds, mean 1-minute load average while it ran)."""
    loads = []
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            loads.append(os.getloadavg()[0])
            time.sleep(5)
    return process.returncode, time.monotonic() - start, sum(loads) / len(loads) if loads else os.getloadavg()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-setup", action="store_true", help="do not run scripts/setup.sh first")
    parser.add_argument("--env", action="append", help="only this tox env (repeatable; default: env_list)")
    args = parser.parse_args()
    from primage import paths

    logs = paths.state_dir() / "benchmark-ci"
    logs.mkdir(parents=True, exist_ok=True)
    stages = [] if args.skip_setup else [("setup", ["scripts/setup.sh"])]
    tox = str(Path(sys.executable).parent / "tox")
    stages += [(env, [tox, "--current-env", "-e", env]) for env in args.env or env_list()]
    rows, total, failed = [], 0.0, 0
    for name, command in stages:
        print(f"==> {name} ...", file=sys.stderr, flush=True)
        code, seconds, load = timed(command, logs / f"{name}.log")
        total += seconds
        failed += code != 0
        rows.append((name, "ok" if code == 0 else f"FAIL ({code})", seconds / 60, load))
        print(f"==> {name}: {rows[-1][1]} in {seconds / 60:.1f} min (load {load:.1f})", file=sys.stderr, flush=True)
    print(f"{'stage':12} {'result':10} {'minutes':>8} {'load':>6}")
    for name, result, minutes, load in rows:
        print(f"{name:12} {result:10} {minutes:8.1f} {load:6.1f}")
    print(f"{'total':12} {'':10} {total / 60:8.1f}")
    print(
        f"\nbudgets: {COLD_BUDGET} min cold, {WARM_BUDGET} min warm (hard limit 90); logs in {logs}; "
        f"{os.cpu_count()} cores"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
