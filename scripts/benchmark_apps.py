#!/usr/bin/env python3
"""Benchmark the application commands on the local backend, side by side with the bare tools.

1. `primage htc submit` over N sample volumes (default 32) at parallelism P (default 2), a fresh
   process each time (rendering, the containers through the engine API, the results table, the
   contact sheet and the report included), beside a bare shell loop (`xargs -P P`) of the same
   `docker run` commands: the same image, user, limits, mounts and environment, the arguments
   made from the same rendered Job. Each round runs both back to back, alternating which goes
   first; the figure is the median of the rounds' ratios (a shared machine's load drifts).
2. Rendering a submission of 10,000 files (finding them in a space folder and rendering the
   htc_batch workload): the time, in one warm process, and the number of objects by file count.
3. `primage apps list` (a fresh process) with 50 applications recorded, beside `primage --version`.
4. Finding 10,000 inputs through the listing a Onedata space's pod prints (primage.apps.listing: its
   script run here with GNU find, then parsed and matched), beside inputs.find on the same folder
   and beside the bare `find` alone: what --onedata adds to a submission, less the pod's start.

    .venv/bin/python scripts/benchmark_apps.py [--volumes 32] [--parallel 2] [--runs 5] [--skip-run]

Everything it makes lives in a temporary folder with its own PRIMAGE_CACHE (its own state and
container labels) and is removed at the end, containers included.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PRIMAGE = Path(sys.executable).parent / "primage"
MOUNT = "/mnt/onedata"


def run(command: list[str], env: dict, check: bool = True) -> float:
    start = time.monotonic()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.monotonic() - start
    if check and completed.returncode != 0:
        raise SystemExit(f"{shlex.join(command[:4])}... failed ({completed.returncode}): {completed.stderr[-800:]}")
    return seconds


def make_sample(image: str, space: Path, count: int) -> None:
    space.mkdir(parents=True)
    os.chown(space, 1000, 1000) if os.geteuid() == 0 else space.chmod(0o777)
    subprocess.run(
        ["docker", "run", "--rm", "--name", f"primage-benchmark-apps-sample-{os.getpid()}", "--user", "1000:1000",
         "-v", f"{space}:{MOUNT}", image, "primage-segment", "sample", MOUNT, "--count", str(count)],
        check=True, capture_output=True,
    )  # fmt: skip


def docker_run_commands(plan, container, list_dir: Path, output: str) -> list[list[str]]:
    """The bare tool's `docker run` of each task, from the same rendered pod template."""
    host, create = container.host_config, container.create
    base = ["docker", "run", "--rm", "--user", create["user"]]
    base += ["--read-only"] if host.get("read_only") else []
    base += [f"--cap-drop={c}" for c in host.get("cap_drop", [])]
    base += [f"--security-opt={o}" for o in host.get("security_opt", [])]
    base += [f"--group-add={g}" for g in host.get("group_add", [])]
    base += [f"--cpus={host['nano_cpus'] / 1e9:g}", f"--memory={host['mem_limit']}"]
    base += [f"--cpu-shares={host['cpu_shares']}", f"--memory-reservation={host['mem_reservation']}"]
    for mount in host["mounts"]:
        if mount["type"] == "tmpfs":
            base += ["--tmpfs", f"{mount['target']}:mode={mount['tmpfs_mode']:o}"]
        elif mount["target"] == "/etc/primage/htc-batch":
            base += ["-v", f"{list_dir}:{mount['target']}:ro"]
        else:
            base += ["-v", f"{mount['source']}:{mount['target']}" + (":ro" if mount["read_only"] else "")]
    environment = {**create["environment"], "PRIMAGE_OUTPUT_DIR": f"{MOUNT}/{output}"}
    for key, value in environment.items():
        base += ["-e", f"{key}={value}"]
    return [[*base, "-e", f"JOB_COMPLETION_INDEX={index}", create["image"]] for index in range(len(plan.inputs))]


def bare_loop(commands: list[list[str]], parallel: int, env: dict, folder: Path) -> float:
    script = folder / "bare.sh"
    script.write_text("".join(shlex.join(c) + "\n" for c in commands))
    # One shell per command, P at a time: what a developer's loop over the files does.
    return run(["sh", "-c", f"tr '\\n' '\\0' < {shlex.quote(str(script))} | xargs -0 -P {parallel} -n 1 sh -c"], env)


def benchmark_run(args, work: Path, env: dict) -> list[list[str]]:
    from primage.apps import model, podspec, prepare
    from primage.apps.local import LocalBackend

    image = args.image or prepare.default_image("segmentation")
    space = work / "space"
    print(f"writing {args.volumes} sample volumes with {image} ...", file=sys.stderr)
    make_sample(image, space, args.volumes)
    backend = LocalBackend()
    submission = model.Submission(name="bare", kind="htc", backend="local", image=image, space=str(space),
                                  files="inputs/*", output="outputs/bare", parallelism=args.parallel)  # fmt: skip
    plan = prepare.htc(submission, backend, space)
    container = podspec.translate(plan.job["spec"]["template"], plan.objects(), files_dir=work / "files",
                                  claim_prefix="bench", where="benchmark")  # fmt: skip
    podspec.write_files(container)
    list_dir = work / "files" / "input-list"
    bare_times, primage_times, ratios = [], [], []
    for round_number in range(args.runs):
        order = ("bare", "primage") if round_number % 2 == 0 else ("primage", "bare")
        seconds = {which: timed_run(which, round_number, args, space, image, plan, container, list_dir, work, env)
                   for which in order}  # fmt: skip
        bare_times.append(seconds["bare"])
        primage_times.append(seconds["primage"])
        ratios.append(seconds["primage"] / seconds["bare"])
        print(f"  round {round_number + 1}: bare {seconds['bare']:.1f} s, primage {seconds['primage']:.1f} s, "
              f"ratio {ratios[-1]:.3f}", file=sys.stderr)  # fmt: skip
    bare, ours = statistics.median(bare_times), statistics.median(primage_times)
    return [
        [f"{args.volumes} volumes, parallelism {args.parallel}: bare `docker run` loop", f"{bare:.1f} s", ""],
        ["  primage htc submit (local backend)", f"{ours:.1f} s", ""],
        [f"  ratio, median of {args.runs} rounds run back to back", f"{statistics.median(ratios):.3f}x",
         "budget 1.10x"],
    ]  # fmt: skip


def timed_run(which, round_number, args, space, image, plan, container, list_dir, work, env) -> float:
    """One run over fresh outputs; primage's own report of its tasks is checked (no retry hides in it)."""
    shutil.rmtree(space / "outputs", ignore_errors=True)
    if which == "bare":
        (space / "outputs" / "bare").mkdir(parents=True)
        subprocess.run(["chown", "-R", "1000:1000", str(space / "outputs")], check=True)
        return bare_loop(docker_run_commands(plan, container, list_dir, "outputs/bare"), args.parallel, env, work)
    name = f"bench-{round_number}"
    command = [str(PRIMAGE), "htc", "submit", name, "--space", str(space), "--files", "inputs/*",
               "--parallel", str(args.parallel), "--image", image, "--json"]  # fmt: skip
    start = time.monotonic()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.monotonic() - start
    if completed.returncode != 0:
        raise SystemExit(f"primage htc submit failed ({completed.returncode}): {completed.stderr[-800:]}")
    tasks = json.loads(completed.stdout)["tasks"]
    attempts = sum(t["attempts"] for t in tasks)
    if attempts != len(tasks):
        print(f"  (primage made {attempts} attempts for {len(tasks)} tasks)", file=sys.stderr)
    run([str(PRIMAGE), "apps", "delete", name], env)
    return seconds


def benchmark_render(work: Path) -> list[list[str]]:
    from primage.apps import model, prepare
    from primage.apps.local import LocalBackend

    backend = LocalBackend()
    rows = []
    for count in (100, 1_000, 10_000):
        space = work / f"render-{count}"
        (space / "inputs").mkdir(parents=True)
        for index in range(count):
            (space / "inputs" / f"patient-{index:05d}.nii.gz").touch()
        submission = model.Submission(name="render", kind="htc", backend="local", image="primage/x:1.0",
                                      space=str(space), files="inputs/*.nii.gz", output="outputs/render")  # fmt: skip
        prepare.htc(submission, backend, space)  # warm: imports and the roles' files read once
        times, kinds = [], {}
        for _ in range(5):
            start = time.perf_counter()
            plan = prepare.htc(submission, backend, space)
            times.append(time.perf_counter() - start)
            kinds = plan.workload.kinds()
        objects = ", ".join(f"{n} {k}" for k, n in kinds.items())
        budget = " (budget 1 s)" if count == 10_000 else ""
        rows.append([f"find and render {count} files", f"{statistics.median(times):.3f} s{budget}", objects])
    return rows


def benchmark_space_listing(work: Path) -> list[list[str]]:
    from primage.apps import inputs, listing

    space = work / "render-10000"  # made by benchmark_render
    pattern, output = "inputs/*.nii.gz", "outputs/render"
    argv = listing.local_argv(space, pattern, output)
    bare, through, local = [], [], []
    for _ in range(5):
        start = time.perf_counter()
        text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        found = listing.parse(text, "the space").find(pattern, output)
        through.append(bare[-1] + time.perf_counter() - start)
        start = time.perf_counter()
        expected = inputs.find(space, pattern, output)
        local.append(time.perf_counter() - start)
    if found != expected:
        raise SystemExit("the listing found other inputs than inputs.find")
    return [
        ["find 10000 inputs: the listing script alone (GNU find)", f"{statistics.median(bare):.3f} s", ""],
        ["find 10000 inputs: the listing, parsed and matched", f"{statistics.median(through):.3f} s",
         f"ratio {statistics.median(through) / statistics.median(bare):.2f} to the script alone"],
        ["find 10000 inputs: inputs.find on the folder", f"{statistics.median(local):.3f} s", ""],
    ]  # fmt: skip


def benchmark_list(work: Path, env: dict) -> list[list[str]]:
    from primage.apps import model, store

    records = store.Store()
    for number in range(50):
        name = f"recorded-{number:02d}"
        submission = model.Submission(name=name, kind="htc", backend="local", image="primage/x:1.0",
                                      space=str(work), files="inputs/*", output=f"outputs/{name}")  # fmt: skip
        records.save_submission(submission)
        tasks = [model.Task(i, f"inputs/case-{i:03d}.nii.gz", f"outputs/{name}/inputs/case-{i:03d}") for i in range(32)]
        for task in tasks:
            task.state, task.exit_code, task.attempts = model.DONE, 0, 1
            records.record(name, task)
        counts = model.Counts.of(tasks)
        records.save_summary(name, {"state": "succeeded", "counts": counts.as_dict(), "updated": model.now()})
    listing, version = [], []
    for _ in range(5):
        version.append(run([str(PRIMAGE), "--version"], env))
        listing.append(run([str(PRIMAGE), "apps", "list"], env))
    shown = subprocess.run([str(PRIMAGE), "apps", "list"], env=env, capture_output=True, text=True).stdout
    if shown.count("recorded-") != 50:
        raise SystemExit(f"apps list did not list the 50 applications:\n{shown}")
    return [
        ["primage --version (a fresh process)", f"{statistics.median(version):.2f} s", ""],
        ["primage apps list, 50 applications", f"{statistics.median(listing):.2f} s", "(budget 1 s)"],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", help="segmentation image (default: this revision's)")
    parser.add_argument("--skip-run", action="store_true", help="only the rendering and listing figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="primage-benchmark-apps-"))
    work.chmod(0o755)
    env = {**os.environ, "PRIMAGE_CACHE": str(work / "cache")}
    os.environ["PRIMAGE_CACHE"] = env["PRIMAGE_CACHE"]
    from primage import report
    from primage.apps import local

    rows = []
    try:
        rows += benchmark_render(work)
        rows += benchmark_space_listing(work)
        rows += benchmark_list(work, env)
        if not args.skip_run:
            rows += benchmark_run(args, work, env)
    finally:
        label = f"label={local.CHECKOUT_LABEL}={local.state_id()}"
        left = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True).stdout
        for container in left.split():
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(report.table(["measure", "median", "note"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
