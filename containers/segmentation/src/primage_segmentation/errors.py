"""Exit codes of a task, and the errors that carry them.

Kubernetes (a Job's podFailurePolicy) and any other scheduler tell from the code alone whether
a retry can help:

| Code | Meaning | Retry? |
| --- | --- | --- |
| 0 | done, or skipped because complete results exist | no |
| 64 | usage or configuration error (missing variable, index beyond the list, ...) | no |
| 65 | bad input: empty, corrupt, truncated or not an image | no |
| 66 | the input does not exist | no |
| 73 | the output folder cannot be written | yes, once the storage is fixed |
| 70 | internal error (a bug: the log holds the traceback) | yes |
| 143 | stopped by SIGTERM (no partial result is left under a final name) | yes |

Codes 64 to 73 are those of BSD's sysexits.h.
"""

from __future__ import annotations

OK = 0
USAGE = 64
BAD_INPUT = 65
NO_INPUT = 66
INTERNAL = 70
CANT_CREATE = 73
TERMINATED = 143

# Codes after which running the same task again cannot succeed.
DO_NOT_RETRY = (USAGE, BAD_INPUT, NO_INPUT)


class TaskError(Exception):
    """An expected failure: one line for the log, and its exit code."""

    code = INTERNAL
    kind = "error"

    def __init__(self, message: str, path: object = None):
        super().__init__(message)
        self.message = message
        self.path = path

    def line(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        return f"{self.kind}: {where}{self.message}"


class UsageError(TaskError):
    code = USAGE
    kind = "usage error"


class BadInput(TaskError):
    code = BAD_INPUT
    kind = "bad input (do not retry)"


class NoInput(TaskError):
    code = NO_INPUT
    kind = "missing input"


class OutputError(TaskError):
    code = CANT_CREATE
    kind = "cannot write output"


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so temporary files are removed on the way out."""
