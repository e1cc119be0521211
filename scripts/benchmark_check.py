#!/usr/bin/env python3
"""Benchmark `primage check` against the bare tools it runs, side by side in one run.

Each round runs, as fresh processes (as a user or CI would):

- `primage check` of every TOSCA and RADL template, input case, types file and composition
  of the tree (the pieces checked with tosca-parser, IM's translator and ec3);
- the bare tools on exactly what primage hands them, once per piece, in one process:
  tosca-parser on every TOSCA document, IM's translator on every one primage translates,
  `ec3 launch --dry-run` on every composition primage composes (their inputs are prepared
  before the rounds, with primage's own functions, and not timed);
- `primage check FILE` on one foreign TOSCA and one foreign RADL template of the test
  corpus (budget: 2 s each).

It prints every round, then the medians and the ratio of primage to the bare tools.
Rounds alternate the commands, so a noisy shared machine weighs on all of them alike.

    .venv/bin/python scripts/benchmark_check.py [--runs 5]
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
from pathlib import Path

KINDS = ["tosca-template", "tosca-case", "tosca-types", "radl-template", "radl-composition"]
ROOT = Path(__file__).resolve().parents[1]
FOREIGN = {
    "foreign TOSCA": ROOT / "tests/fixtures/foreign/tosca/block_storage_attached.yaml",
    "foreign RADL": ROOT / "tests/fixtures/foreign/radl/site_a/scratch_disk.radl",
}
FILE_BUDGET_SECONDS = 2.0


# --------------------------------------------------------------------------- what the bare tools get


def prepare(work: Path) -> dict:
    """The inputs primage gives each tool, written under `work`, with primage's own checks
    (run here untimed): a plan the bare round replays."""
    from primage import checks, pieces, radl, tosca
    from primage.checks import registry, tosca_checks

    plan: dict[str, list] = {"tosca-parser": [], "im-translate": [], "ec3": []}
    recorded: list[dict] = []

    def record_compose(names, features, display, timeout=60, extra_templates=None, **options):
        folder = work / f"ec3-{len(recorded)}"
        templates = options.get("templates")
        if templates is None:
            templates = [p for d in radl.template_dirs() for p in d.glob("*.radl")] + (extra_templates or [])
        command = radl.ec3_launch_folder(folder, names, features, templates, options.get("files"), options.get("frame"))
        recorded.append({"cwd": str(folder), "command": command})
        return radl.Composition(names, features)

    real_compose, radl.compose = radl.compose, record_compose
    try:
        everything = pieces.discover()
        owners = {p.related[0].stem for p in everything if p.kind == "tosca-case"}
        for piece in (p for p in everything if p.kind in KINDS):
            context = checks.Context({"has_cases": piece.name in owners})
            is_tosca = piece.kind.startswith("tosca")
            for name, check in registry.checks_for(piece.kind):
                if not (is_tosca and name in ("tosca-parser", "im-translate", "radl-check")):
                    check(piece, context)  # RADL pieces: ec3 is recorded, not run
            if piece.kind == "tosca-types":
                plan["tosca-parser"].append({"types": str(piece.path)})
            elif is_tosca:
                tosca_checks.tosca_parser(piece, context)  # renders the document primage parses
                document = work / f"{piece.kind}-{piece.name}.json"
                document.write_text(json.dumps(context["rendered"]))
                plan["tosca-parser"].append({"document": str(document)})
                missing = [
                    name
                    for name in tosca.missing_required(context["template"], context["values"])
                    if not tosca.is_secret(name)
                ]
                if context.get("parsed_ok") and not missing:
                    plan["im-translate"].append({"document": str(document)})
    finally:
        radl.compose = real_compose
    plan["ec3"] = recorded
    plan["state"] = str(work)
    return plan


def bare_round(plan_file: Path) -> dict:
    """Replay the plan with the bare tools in this process; seconds per tool."""
    start = time.monotonic()
    plan = json.loads(plan_file.read_text())
    import yaml
    from IM.tosca.Tosca import Tosca
    from toscaparser.common.exception import ExceptionCollector
    from toscaparser.tosca_template import ToscaTemplate

    seconds: dict[str, float] = {}
    mark = time.monotonic()
    for item in plan["tosca-parser"]:
        if "types" in item:
            document = {"tosca_definitions_version": "tosca_simple_yaml_1_0", "imports": [item["types"]]}
            document["topology_template"] = {"node_templates": {}}
        else:
            document = json.loads(Path(item["document"]).read_text())
        ToscaTemplate(yaml_dict_tpl=document, a_file=False)
        ExceptionCollector.stop()
        ExceptionCollector.clear()
    seconds["tosca-parser"] = time.monotonic() - mark
    mark = time.monotonic()
    os.chdir(plan["state"])  # IM keeps an HTTP cache in the working folder
    for item in plan["im-translate"]:
        Tosca(yaml.safe_dump(json.loads(Path(item["document"]).read_text()))).to_radl()
    seconds["im-translate"] = time.monotonic() - mark
    mark = time.monotonic()
    from primage import radl

    environment = radl.ec3_environment()
    for item in plan["ec3"]:
        completed = subprocess.run(item["command"], cwd=item["cwd"], env=environment, capture_output=True, check=False)
        if completed.returncode != 0:
            sys.exit(f"ec3 failed in {item['cwd']}: {completed.stderr.decode()[-400:]}")
    seconds["ec3"] = time.monotonic() - mark
    seconds["total"] = time.monotonic() - start
    counts = {tool: len(plan[tool]) for tool in ("tosca-parser", "im-translate", "ec3")}
    return {"seconds": seconds, "counts": counts}


# --------------------------------------------------------------------------- rounds


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    return time.monotonic() - start, completed


def check_tree(primage: Path) -> tuple[float, dict]:
    wall, completed = timed([str(primage), "check", *KINDS, "--json"])
    if completed.returncode not in (0, 1):
        sys.exit(f"primage check failed to run:\n{completed.stderr}")
    return wall, json.loads(completed.stdout)


def bare(plan_file: Path) -> tuple[float, dict]:
    wall, completed = timed([sys.executable, __file__, "--bare-round", str(plan_file)])
    if completed.returncode != 0:
        sys.exit(f"the bare tools failed:\n{completed.stderr[-2000:]}")
    return wall, json.loads(completed.stdout.strip().splitlines()[-1])


def check_file(primage: Path, path: Path) -> float:
    wall, completed = timed([str(primage), "check", str(path), "--json"])
    if completed.returncode != 0:
        sys.exit(f"primage check {path} failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bare-round", metavar="PLAN", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_round:
        print(json.dumps(bare_round(Path(args.bare_round))))
        return 0
    primage = Path(sys.executable).parent / "primage"
    with tempfile.TemporaryDirectory(prefix="primage-benchmark-") as work:
        plan_file = Path(work) / "plan.json"
        plan_file.write_text(json.dumps(prepare(Path(work))))
        check_tree(primage)  # warm the file cache, the bytecode cache and ec3's parser tables
        bare(plan_file)
        rows: dict[str, list[float]] = {"primage check (tree)": [], "bare tools": []}
        rows.update({name: [] for name in FOREIGN})
        tools: dict[str, list[float]] = {}
        failed = False
        for index in range(args.runs):
            wall, report = check_tree(primage)
            rows["primage check (tree)"].append(wall)
            failed |= report["failed"]
            bare_wall, result = bare(plan_file)
            rows["bare tools"].append(bare_wall)
            for tool, seconds in result["seconds"].items():
                tools.setdefault(tool, []).append(seconds)
            for name, path in FOREIGN.items():
                rows[name].append(check_file(primage, path))
            print(
                f"round {index + 1}: primage check {wall:6.2f} s ({len(report['pieces'])} pieces), "
                f"bare tools {bare_wall:6.2f} s, " + ", ".join(f"{name} {rows[name][-1]:.2f} s" for name in FOREIGN)
            )
    median = {name: statistics.median(values) for name, values in rows.items()}
    counts = result["counts"]
    print(f"\nmedians of {args.runs} rounds (wall clock, fresh processes):")
    print(f"  primage check of the tree's templates   {median['primage check (tree)']:6.2f} s")
    print(
        f"  bare tools, once per piece, one process {median['bare tools']:6.2f} s  "
        f"(tosca-parser x{counts['tosca-parser']} {statistics.median(tools['tosca-parser']):.2f} s, "
        f"IM translator x{counts['im-translate']} {statistics.median(tools['im-translate']):.2f} s, "
        f"ec3 --dry-run x{counts['ec3']} {statistics.median(tools['ec3']):.2f} s)"
    )
    print(f"  ratio primage / bare tools              {median['primage check (tree)'] / median['bare tools']:6.2f}")
    for name, path in FOREIGN.items():
        verdict = "within" if median[name] <= FILE_BUDGET_SECONDS else "OVER"
        relative = path.relative_to(ROOT)
        print(f"  primage check {relative} {median[name]:.2f} s ({verdict} the {FILE_BUDGET_SECONDS:.0f} s budget)")
    if failed:
        print("\nnote: some checks failed; run `primage check` to see them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
