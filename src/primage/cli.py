"""The `primage` command: one entry point for the harness and, later, the application commands.

Each sub-command lives in its own module and registers itself in COMMANDS with
`add_parser(subparsers)` and `run(args) -> int`. A new command (`htc`, `apps`,
`notebook`, `deploy`...) is one more module and one more line below.
"""

from __future__ import annotations

import argparse
import os
import select
import sys

from . import __version__
from .commands import (
    apps,
    batch,
    check,
    cluster,
    deploy,
    docs,
    env,
    htc,
    images,
    infra,
    lint,
    listing,
    notebook,
    oidc,
    render,
    test,
    undeploy,
)
from .errors import PrimageError, UsageError

COMMANDS = [
    listing,
    render,
    check,
    lint,
    test,
    docs,
    images,
    env,
    cluster,
    deploy,
    infra,
    undeploy,
    htc,
    batch,
    notebook,
    apps,
    oidc,
]


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


EXIT_PIPE_CLOSED = 128 + 13  # what a shell reports for a command ended by SIGPIPE


def _reader_gone(stream) -> bool:
    """True when `stream` is a pipe whose reader has closed it (`primage list | head`)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLERR)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture output)
        return False


def _quiet_closed_pipes() -> None:
    """Send what is left for closed pipes to /dev/null, so that exiting does not fail on them."""
    for stream in (sys.stdout, sys.stderr):
        if _reader_gone(stream):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError as exc:
        if not (_reader_gone(sys.stdout) or _reader_gone(sys.stderr)):
            return _internal_error(exc)  # a pipe of our own (to a tool we run) broke
        # The reader took what it wanted and left, as `head` does: not an error of ours.
        _quiet_closed_pipes()
        return EXIT_PIPE_CLOSED
    except UsageError as exc:
        print(f"primage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except PrimageError as exc:
        print(f"primage: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # never a traceback for users; PRIMAGE_DEBUG=1 shows it
        return _internal_error(exc)
    except KeyboardInterrupt:
        print("primage: interrupted", file=sys.stderr)
        return 130


def _internal_error(exc: Exception) -> int:
    if os.environ.get("PRIMAGE_DEBUG"):
        raise exc
    message = f"internal error: {type(exc).__name__}: {exc} (PRIMAGE_DEBUG=1 shows the traceback)"
    print(f"primage: {message}", file=sys.stderr)
    return 70


if __name__ == "__main__":
    sys.exit(main())
