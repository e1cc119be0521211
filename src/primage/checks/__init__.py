"""Checks of each kind of piece, with the real tools of the field.

A check returns a Result: passed, failed (with problems naming file, line or field),
warned (only warnings: shown, never a failure), not run (with the reason; never counted
as passed) or not applicable. Each module here registers the checks of the kinds it
knows in CHECKS_BY_KIND, in the order they run.

What is an error and what a warning: a finding that would break a deployment (a syntax
error, a duplicate key, an unknown type, a dangling requirement, a missing artifact, an
input of the wrong type, playbooks of another release than the types) is an error
everywhere. A house rule of this repository (its YAML style) is an error for the
repository's own pieces and a warning for any other file (`Piece.own`): a template
nobody here wrote is not held to it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ERROR, WARNING, PrimageError, Problem
from ..pieces import Piece

PASS, WARN, FAIL, NOT_RUN, NOT_APPLICABLE = "pass", "warn", "FAIL", "not run", "n/a"


@dataclass
class Result:
    check: str
    status: str
    problems: list[Problem] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    def as_dict(self) -> dict:
        return {
            "check": self.check,
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "warnings": len(self.warnings),
            "problems": [p.as_dict() for p in self.problems],
        }


def passed(check: str) -> Result:
    return Result(check, PASS)


def failed(check: str, problems: list[Problem]) -> Result:
    return Result(check, FAIL, problems)


def not_run(check: str, reason: str) -> Result:
    return Result(check, NOT_RUN, reason=reason)


def from_problems(check: str, problems: list[Problem]) -> Result:
    """Failed on any error, warned when there are only warnings, else passed."""
    if any(p.severity == ERROR for p in problems):
        return failed(check, problems)
    return Result(check, WARN, problems) if problems else passed(check)


class Context(dict):
    """What earlier checks of the same piece learnt (rendered template, RADL...), by name."""


Check = Callable[[Piece, Context], Result]


@dataclass
class PieceReport:
    piece: Piece
    results: list[Result]

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL for r in self.results)

    @property
    def warnings(self) -> int:
        return sum(len(r.warnings) for r in self.results)

    def as_dict(self) -> dict:
        return {
            **self.piece.as_dict(),
            "failed": self.failed,
            "warnings": self.warnings,
            "results": [r.as_dict() for r in self.results],
        }


def run_checks(piece: Piece, checks: list[tuple[str, Check]], options: dict | None = None) -> PieceReport:
    context = Context(options or {})
    results = []
    for name, check in checks:
        start = time.monotonic()
        try:
            result = check(piece, context)
        except PrimageError as exc:
            result = failed(name, [exc.problem])
        except Exception as exc:  # a bug in the harness or a tool: report it, never a traceback
            if os.environ.get("PRIMAGE_DEBUG"):
                raise
            result = failed(
                name,
                [
                    Problem(
                        piece.display_path,
                        f"internal error in the {name} check: "
                        f"{type(exc).__name__}: {exc} (PRIMAGE_DEBUG=1 shows the traceback)",
                    )
                ],
            )
        result.check = name
        result.seconds = time.monotonic() - start
        results.append(result)
    return PieceReport(piece, results)
