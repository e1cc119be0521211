"""`primage env`: shell exports to run ansible, molecule or ansible-lint by hand on this checkout."""

from __future__ import annotations

from .. import ansible_env


def add_parser(subparsers):
    return subparsers.add_parser(
        "env",
        help="print shell exports for running ansible/molecule by hand",
        description='Print `export` lines; use as: eval "$(primage env)".',
    )


def run(args) -> int:
    print(ansible_env.shell_exports())
    return 0
