"""The local backend's small state folder: one folder per application, shared by every terminal.

    <state>/apps/<name>/
        submission.json   what was submitted (its identity tells a resubmission from a new one)
        events.jsonl      one line per task state change, appended: the last line of a task wins
        summary.json      counts and state, rewritten after each change (what `apps list` reads)
        lock              held (flock) by the process running the application; free after a crash
        files/            the configMap and secret volumes' files the containers mount
        logs/             each finished attempt's log, <index>-<attempt>.log
        token             a notebook's token, mode 0600

Each line and file is written whole (a line in one write, a file renamed into place), so a reader
in another terminal, or after a crash or a reboot, sees a consistent state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .. import paths
from ..errors import PrimageError
from .model import Submission, Task

LOCK_WAIT = 1.0  # seconds a submitter waits for a lock another process only probes


class Store:
    def __init__(self, root: Path | None = None):
        self.root = root or paths.state_dir() / "apps"
        self._write_lock = threading.Lock()

    def folder(self, name: str) -> Path:
        return self.root / name

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "submission.json").is_file())

    def exists(self, name: str) -> bool:
        return (self.folder(name) / "submission.json").is_file()

    # --- submission and summary --------------------------------------------------------------

    def submission(self, name: str) -> Submission | None:
        data = self._read_json(self.folder(name) / "submission.json")
        return Submission.from_dict(data) if data else None

    def save_submission(self, submission: Submission) -> None:
        folder = self.folder(submission.name)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_json(folder / "submission.json", submission.as_dict())

    def summary(self, name: str) -> dict:
        return self._read_json(self.folder(name) / "summary.json") or {}

    def save_summary(self, name: str, summary: dict) -> None:
        self._write_json(self.folder(name) / "summary.json", summary)

    # --- task events -----------------------------------------------------------------------------

    def record(self, name: str, task: Task) -> None:
        line = json.dumps(task.as_dict(), separators=(",", ":")) + "\n"
        with self._write_lock, open(self.folder(name) / "events.jsonl", "a", encoding="utf-8") as out:
            out.write(line)

    def tasks(self, name: str) -> dict[str, Task]:
        """The latest state of each input's task."""
        latest: dict[str, Task] = {}
        try:
            with open(self.folder(name) / "events.jsonl", encoding="utf-8") as events:
                for line in events:
                    try:
                        task = Task.from_dict(json.loads(line))
                    except (ValueError, TypeError):
                        continue  # a line being written by the running process
                    latest[task.input] = task
        except FileNotFoundError:
            pass
        return latest

    def log_file(self, name: str, index: int, attempt: int) -> Path:
        folder = self.folder(name) / "logs"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder / f"{index}-{attempt}.log"

    def files_dir(self, name: str) -> Path:
        return self.folder(name) / "files"

    # --- who runs it -----------------------------------------------------------------------------

    def runner_pid(self, name: str) -> int | None:
        """The process running the application, or None when none holds its lock (it ended or crashed)."""
        lock = self.folder(name) / "lock"
        try:
            descriptor = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            return None
        finally:
            os.close(descriptor)

    @contextlib.contextmanager
    def running(self, name: str) -> Iterator[None]:
        """Hold the application's lock while it runs; another process running it is an error."""
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pid = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
                    os.close(descriptor)
                    raise PrimageError(
                        f"application {name} is running in another process (pid {pid or '?'}): follow it with "
                        f"`primage apps show {name}`, or stop it there with Ctrl-C"
                    ) from None
                time.sleep(0.05)
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.folder(name), ignore_errors=True)

    # --- files -----------------------------------------------------------------------------------

    @staticmethod
    def _read_json(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise PrimageError(f"unreadable application record ({error})", file=path) from None

    @staticmethod
    def _write_json(path: Path, data: dict) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def write_private(path: Path, text: str) -> None:
    """A file only its owner may read (a token), created with that mode: never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
