"""Errors a user of the harness sees: always a file, a place in it and what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# How much a finding weighs: an error fails the check; a warning is shown and never fails it.
ERROR, WARNING = "error", "warning"


@dataclass
class Problem:
    """One finding about one file, phrased for the template author."""

    file: str
    message: str
    line: int | None = None
    field: str | None = None
    severity: str = ERROR

    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" ({self.field})"
        return where

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


class PrimageError(Exception):
    """A failure the command line reports in one line and exits non-zero for."""

    exit_code = 1  # what `primage` exits with; subclasses tell failures apart for scripts

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ):
        self.problem = Problem(str(file) if file is not None else "", message, line, field)
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.problem.file:
            return str(self.problem)
        return self.problem.message


class UsageError(PrimageError):
    """Bad arguments on the command line (exit code 2)."""

    exit_code = 2
