"""`primage test roles [ROLE ...]`: the Molecule matrix of the collection's roles.

Runs each role's scenario on each platform stage by stage (create with prepare, converge,
idempotence, side-effect, verify, destroy) with progress, then prints a table of role by platform by
stage. Platforms default to every base image of containers/base/images.yml; one whose
image is not present is reported as not run, never as passed. Exit 1 if any stage failed.
"""

from __future__ import annotations

import json
import sys

from .. import molecule, report


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "test",
        help="run test suites of the pieces (Molecule for roles)",
        description="Run the test suites that are not plain checks.",
    )
    suites = parser.add_subparsers(dest="suite", metavar="SUITE")
    suites.required = True
    roles_parser = suites.add_parser(
        "roles",
        help="Molecule matrix: role x platform x stage",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    roles_parser.add_argument("roles", nargs="*", metavar="ROLE", help="roles to test (default: all)")
    roles_parser.add_argument(
        "--platform",
        action="append",
        metavar="IMAGE",
        help="platform image, e.g. debian:trixie (repeatable; default: all declared)",
    )
    roles_parser.add_argument("--jobs", type=int, default=2, help="runs at once (default: 2)")
    roles_parser.add_argument("--keep", action="store_true", help="do not destroy the instances at the end")
    roles_parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def run(args) -> int:
    runs = molecule.run_matrix(args.roles, args.platform, jobs=args.jobs, keep=args.keep)
    if args.json:
        print(json.dumps([r.as_dict() for r in runs], indent=2))
    else:
        print(report.table(["role", "platform", *molecule.STAGES, "total"], molecule.table_rows(runs)))
        for r in runs:
            if r.reason:
                print(f"  {r.role} on {r.platform}: not run: {r.reason}")
            if r.error:
                print(f"  {r.role} on {r.platform}: FAIL: {r.error}")
        failed = [f"{r.role} on {r.platform}" for r in runs if r.failed]
        print(f"\n{len(runs)} runs, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    if not any(r.stages or r.error for r in runs):
        print("primage: no Molecule run could start (see the reasons above)", file=sys.stderr)
        return 1
    return 1 if any(r.failed for r in runs) else 0
