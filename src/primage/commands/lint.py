"""`primage lint ansible|jinja [FILE ...]`: the linters that need the harness's environment.

`ansible` runs ansible-lint (production profile, .ansible-lint) on the collection with the
working tree's collection on ANSIBLE_COLLECTIONS_PATH, so FQCNs resolve. `jinja` parses
every Jinja template given (default: all *.j2 of the repository) and reports syntax
errors as file:line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import ansible_env, paths
from ..jinja_syntax import jinja_problems


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "lint",
        help="run ansible-lint or the Jinja syntax check",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("linter", choices=["ansible", "jinja"])
    parser.add_argument("files", nargs="*", metavar="FILE")
    return parser


def lint_ansible(files: list[str]) -> int:
    targets = files or [str(paths.ansible_dir())]
    config = str(paths.root() / ".ansible-lint")
    return ansible_env.run_tool("ansible-lint", "--config-file", config, *targets, capture=False).returncode


def lint_jinja(files: list[str]) -> int:
    targets = [Path(f) for f in files] or sorted(
        p for p in paths.root().rglob("*.j2") if not any(part.startswith(".") for part in p.parts)
    )
    problems = [problem for path in targets for problem in jinja_problems(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(targets)} Jinja templates, {len(problems)} with errors")
    return 1 if problems else 0


def run(args) -> int:
    return lint_ansible(args.files) if args.linter == "ansible" else lint_jinja(args.files)
