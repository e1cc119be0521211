"""What an application is, whatever backend runs it: its submission, its tasks and their states."""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

from ..errors import UsageError

KINDS = ("htc", "batch", "notebook")
# An RFC 1123 label, as the roles want (Job names add a hash, so at most 52 characters).
NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")

# Task states.
PENDING, RUNNING, DONE, FAILED, INTERRUPTED = "pending", "running", "done", "failed", "interrupted"
# Application states.
APP_RUNNING, SUCCEEDED, APP_FAILED, INCOMPLETE, STOPPED = "running", "succeeded", "failed", "incomplete", "stopped"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise UsageError(
            f"'{name}' is not an application name: lower-case letters, digits and '-', starting and ending with a "
            "letter or digit, at most 52 characters (it names Kubernetes objects too), e.g. liver-ct-2024"
        )
    return name


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def age(moment: str | None, reference: float | None = None) -> str:
    """'3m', '2h', '5d' since an ISO time."""
    if not moment:
        return ""
    seconds = max(0, (reference or time.time()) - datetime.fromisoformat(moment).timestamp())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


@dataclass
class Submission:
    """What the developer asked for. Its identity (kind, image, space, files, output) tells a new
    submission from the same one submitted again, which resumes it."""

    name: str
    kind: str
    backend: str
    image: str
    space: str = ""  # the space folder (absolute), or "" with onedata
    onedata: str = ""  # the Onedata space the cluster mounts, or ""
    files: str = ""  # the input pattern, relative to the space
    output: str = ""  # the output folder, relative to the space
    parallelism: int = 1
    retries: int = 0
    kubeconfig: str = ""
    onedata_image: str = ""  # the Onedata variant the pods run, when not the image's -onedata
    pod_overrides: str = ""  # the kubernetes backend's --pod-overrides file
    created: str = field(default_factory=now)

    IDENTITY = ("kind", "image", "space", "onedata", "files", "output")

    def identity(self) -> dict:
        return {key: getattr(self, key) for key in self.IDENTITY}

    def differences(self, other: Submission) -> list[str]:
        return [f"{key} {getattr(other, key)!r}" for key in self.IDENTITY if getattr(self, key) != getattr(other, key)]

    def command(self) -> str:
        """The command that submits this application again (and so resumes it)."""
        if self.kind == "notebook":
            words = ["primage", "notebook", "start", self.name]
            words += ["--space", self.space] if self.space else []
        else:
            words = ["primage", self.kind, "submit", self.name]
            words += ["--space", self.space] if self.space else ["--onedata", self.onedata]
            words += ["--files", self.files]
            if self.output != default_output(self.name):
                words += ["--output", self.output]
            words += ["--parallel", str(self.parallelism)] if self.kind == "htc" else []
            words += ["--retries", str(self.retries)]
        words += ["--image", self.image]
        words += ["--onedata-image", self.onedata_image] if self.onedata_image else []
        if self.backend != "local":
            words += ["--backend", self.backend] + (["--kubeconfig", self.kubeconfig] if self.kubeconfig else [])
            words += ["--pod-overrides", self.pod_overrides] if self.pod_overrides else []
        return shlex.join(words)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Submission:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def default_output(name: str) -> str:
    """Each application writes its results to a folder of its own in the space."""
    return f"outputs/{name}"


@dataclass
class Task:
    """One task of an HTC or batch application: one input, one output folder, its latest state."""

    index: int
    input: str  # relative to the space
    output: str  # this task's output folder, relative to the space
    state: str = PENDING
    attempts: int = 0
    exit_code: int | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    error: str = ""
    log: str = ""  # where its last attempt's log is kept
    reused: bool = False  # complete results from an earlier run: not run again

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Counts:
    done: int = 0
    failed: int = 0
    running: int = 0
    total: int = 0

    @classmethod
    def of(cls, tasks: list[Task]) -> Counts:
        return cls(
            done=sum(t.state == DONE for t in tasks),
            failed=sum(t.state == FAILED for t in tasks),
            running=sum(t.state == RUNNING for t in tasks),
            total=len(tasks),
        )

    @property
    def left(self) -> int:
        return self.total - self.done - self.failed - self.running

    def as_dict(self) -> dict:
        return {**asdict(self), "left": self.left}


@dataclass
class Application:
    """An application as a backend reports it."""

    submission: Submission
    state: str
    counts: Counts
    tasks: list[Task] = field(default_factory=list)
    updated: str | None = None
    url: str = ""  # a notebook's address, without its token
    note: str = ""  # what the state means, e.g. how to resume

    @property
    def name(self) -> str:
        return self.submission.name

    def as_dict(self, with_tasks: bool = True) -> dict:
        data = {
            "name": self.name,
            "kind": self.submission.kind,
            "backend": self.submission.backend,
            "state": self.state,
            "counts": self.counts.as_dict(),
            "created": self.submission.created,
            "updated": self.updated,
            "submission": self.submission.as_dict(),
        }
        if self.url:
            data["url"] = self.url
        if self.note:
            data["note"] = self.note
        if with_tasks:
            data["tasks"] = [t.as_dict() for t in self.tasks]
        return data


def state_of(counts: Counts, running: bool) -> str:
    if running:
        return APP_RUNNING
    if counts.total and counts.done == counts.total:
        return SUCCEEDED
    if counts.failed and counts.done + counts.failed == counts.total:
        return APP_FAILED
    return INCOMPLETE
