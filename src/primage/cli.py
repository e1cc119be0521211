"""The `primage` command: one entry point for the harness and, later, the application commands.

Each sub-command lives in its own module and registers itself in COMMANDS with
`add_parser(subparsers)` and `run(args) -> int`. A new command (`htc`, `apps`,
`notebook`, `deploy`...) is one more module and one more line below.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .commands import check, docs, env, images, lint, listing, render, test
from .errors import PrimageError, UsageError

COMMANDS = [listing, render, check, lint, test, docs, images, env]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 with usage; keep that, add the hint
        self.print_usage(sys.stderr)
        print(f"primage: error: {message} (see 'primage --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="primage", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"primage {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in COMMANDS:
        sub = module.add_parser(subparsers)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"primage: error: {exc}", file=sys.stderr)
        return 2
    except PrimageError as exc:
        print(f"primage: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback for users; PRIMAGE_DEBUG=1 shows it
        if os.environ.get("PRIMAGE_DEBUG"):
            raise
        print(
            f"primage: internal error: {type(exc).__name__}: {exc} (PRIMAGE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 70
    except KeyboardInterrupt:
        print("primage: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
