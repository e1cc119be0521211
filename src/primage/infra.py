"""Infrastructures deployed through IM: which IM each one lives at, following IM while it
works, and what an infrastructure is made of.

Which IM URL and auth file an infrastructure was deployed with is remembered in a small
per-user file (paths.user_state_dir()/infrastructures.json, mode 0600). It holds the auth
file's path, never its content, so `primage infra show ID` or `primage undeploy ID` need
no --im/--auth; an option, then PRIMAGE_IM_URL/PRIMAGE_IM_AUTH, override it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import im_auth, paths
from .errors import PrimageError, UsageError
from .im_rest import IMClient, IMError, IMNotFound

ENV_URL = "PRIMAGE_IM_URL"
ENV_AUTH = "PRIMAGE_IM_AUTH"
RECORDS_FILE = "infrastructures.json"
# States after which IM does nothing more on its own (IM's `wait` stops at the same ones).
FINAL_STATES = ("configured", "unconfigured", "failed", "stopped", "off")
UNKNOWN_NODE = "?"
DEFAULT_TIMEOUT = 7200  # IM's own default limit for contextualization (MAX_CONTEXTUALIZATION_TIME)


class WaitTimeout(IMError):
    exit_code = 6


class StoppedWaiting(PrimageError):
    exit_code = 130


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    """Where one infrastructure lives and what it came from. No secret: the auth file's path only."""

    id: str
    im_url: str
    auth_file: str
    source: str  # the template or RADL file deployed
    kind: str  # tosca or radl
    created: str  # ISO 8601, UTC
    artifacts: str | None = None  # release or local (TOSCA)


def records_file() -> Path:
    return paths.user_state_dir() / RECORDS_FILE


@contextlib.contextmanager
def _locked():
    """Two terminals deploying at once must not lose each other's record."""
    lock = records_file().with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_records() -> dict[str, Record]:
    path = records_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {key: Record(**value) for key, value in data["infrastructures"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise PrimageError(
            f"not a primage record of infrastructures ({type(exc).__name__}: {exc}); it only remembers which IM "
            "each infrastructure lives at: move it away and pass --im/--auth",
            file=path,
        ) from None


def _write_records(records: dict[str, Record]) -> None:
    path = records_file()
    text = json.dumps({"infrastructures": {key: asdict(r) for key, r in records.items()}}, indent=2) + "\n"
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


def remember(record: Record) -> None:
    with _locked():
        records = load_records()
        records[record.id] = record
        _write_records(records)


def forget(*infrastructures: str) -> None:
    with _locked():
        records = load_records()
        if any(key in records for key in infrastructures):
            _write_records({key: r for key, r in records.items() if key not in infrastructures})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- connection


def client(url: str, auth_file: str | Path) -> IMClient:
    return IMClient(url, im_auth.load(auth_file))


def connect(infrastructure: str, im: str | None, auth: str | None) -> tuple[IMClient, Record | None]:
    """The IM of an infrastructure: --im/--auth, else PRIMAGE_IM_URL/PRIMAGE_IM_AUTH, else its record."""
    record = load_records().get(infrastructure)
    url = im or os.environ.get(ENV_URL) or (record.im_url if record else None)
    auth_file = auth or os.environ.get(ENV_AUTH) or (record.auth_file if record else None)
    if not url or not auth_file:
        missing = " and ".join(what for what, value in (("--im URL", url), ("--auth FILE", auth_file)) if not value)
        raise UsageError(
            f"infrastructure {infrastructure} is not in {records_file()} (deployed elsewhere?); give {missing} "
            f"(or set {ENV_URL} and {ENV_AUTH})"
        )
    return client(url, auth_file), record


def deploy_client(im: str | None, auth: str | None) -> IMClient:
    url = im or os.environ.get(ENV_URL)
    auth_file = auth or os.environ.get(ENV_AUTH)
    if not url:
        raise UsageError(f"which IM? give --im URL (or set {ENV_URL})")
    if not auth_file:
        raise UsageError(f"no IM credentials: give --auth FILE (or set {ENV_AUTH})")
    return client(url, auth_file)


# --------------------------------------------------------------------------- virtual machines


@dataclass
class VM:
    id: str
    node: str  # the TOSCA node or RADL system it is an instance of
    state: str
    public_ips: list[str]
    private_ips: list[str]
    provider: str
    cpus: int | None
    memory: str | None


def _memory(size) -> str | None:
    if not isinstance(size, int | float) or size <= 0:
        return None
    gib = size / 2**30
    return f"{gib:g} GiB" if gib >= 1 else f"{size / 2**20:g} MiB"


def vm_from_radl(vm_id: str, radl: list[dict], state: str | None = None) -> VM:
    """The parts of IM's VM description people look at. Its credentials stay out."""
    networks = {item.get("id"): item for item in radl if item.get("class") == "network"}
    system = next((item for item in radl if item.get("class") == "system"), {})
    public, private = [], []
    index = 0
    while f"net_interface.{index}.connection" in system:
        ip = system.get(f"net_interface.{index}.ip")
        outbound = (networks.get(system[f"net_interface.{index}.connection"]) or {}).get("outbound") == "yes"
        if ip:
            (public if outbound else private).append(str(ip))
        index += 1
    cpus = system.get("cpu.count", system.get("cpu.count_min"))
    return VM(
        id=str(vm_id),
        node=str(system.get("id", UNKNOWN_NODE)),
        state=state or str(system.get("state", "unknown")),
        public_ips=public,
        private_ips=private,
        provider=str(system.get("provider.type", "")),
        cpus=int(cpus) if isinstance(cpus, int | float) else None,
        memory=_memory(system.get("memory.size", system.get("memory.size_min"))),
    )


def vms(im: IMClient, infrastructure: str, vm_states: dict[str, str]) -> list[VM]:
    """Every VM of the infrastructure, described (IM answers one VM per request: ask in parallel)."""
    ids = sorted(vm_states, key=lambda vm: int(vm) if vm.isdigit() else vm)
    if not ids:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
        radls = list(pool.map(lambda vm: _vm_radl(im, infrastructure, vm), ids))
    return [vm_from_radl(vm, radl, vm_states[vm]) for vm, radl in zip(ids, radls, strict=True)]


def _vm_radl(im: IMClient, infrastructure: str, vm: str) -> list[dict]:
    try:
        return im.vm_info(infrastructure, vm)
    except IMError as exc:
        if exc.status != 404:
            raise
        return []  # IM lists a VM it is still creating before it answers for it: node unknown yet


def describe(im: IMClient, infrastructure: str, record: Record | None) -> dict:
    """State per VM, outputs (TOSCA only) and the contextualization log, as one dict (--json)."""
    state = im.state(infrastructure)
    outputs = im.optional_property(infrastructure, "outputs")
    return {
        "id": infrastructure,
        "im_url": im.url,
        "state": state["state"],
        "kind": record.kind if record else ("tosca" if outputs is not None else "radl"),
        "source": record.source if record else None,
        "created": record.created if record else None,
        "vms": [asdict(vm) for vm in vms(im, infrastructure, state["vm_states"])],
        "outputs": outputs,
        "contmsg": im.contmsg(infrastructure),
    }


# --------------------------------------------------------------------------- following IM


class Progress:
    """One line per change on a log; one line rewritten in place on a terminal."""

    def __init__(self, activity: str):
        self.activity = activity
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = ""

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def show(self, summary: str) -> None:
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            print(
                f"\r\x1b[K[{self.elapsed()}] {self.activity}: {summary}"[: width + 4],
                end="",
                file=sys.stderr,
                flush=True,
            )
        elif summary != self.last:
            print(f"==> [{self.elapsed()}] {self.activity}: {summary}", file=sys.stderr, flush=True)
        self.last = summary

    def done(self) -> None:
        if self.tty and self.last:
            print(file=sys.stderr, flush=True)


def state_summary(state: dict, nodes: dict[str, str]) -> str:
    """`running: 0 front running, 1 wn pending`; grouped per node beyond a handful of VMs."""
    vm_states = state.get("vm_states") or {}
    ordered = sorted(vm_states, key=lambda vm: int(vm) if vm.isdigit() else vm)
    if not ordered:
        return f"{state['state']} (no VM yet)"
    if len(ordered) <= 6:
        parts = [f"{vm} {nodes.get(vm, '?')} {vm_states[vm]}" for vm in ordered]
    else:
        counts: dict[str, dict[str, int]] = {}
        for vm in ordered:
            per_node = counts.setdefault(nodes.get(vm, "?"), {})
            per_node[vm_states[vm]] = per_node.get(vm_states[vm], 0) + 1
        parts = [f"{node} " + " ".join(f"{n} {s}" for s, n in per.items()) for node, per in counts.items()]
    return f"{state['state']}: " + ", ".join(parts)


def wait(im: IMClient, infrastructure: str, activity: str, timeout: float) -> dict:
    """Poll IM until the infrastructure reaches a final state; show each VM's state meanwhile."""
    progress = Progress(f"{activity} {infrastructure}")
    nodes: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            state = im.state(infrastructure)
            new = [vm for vm in state["vm_states"] if vm not in nodes]
            for vm in vms(im, infrastructure, {vm: state["vm_states"][vm] for vm in new}):
                if vm.node != UNKNOWN_NODE:  # else asked again at the next poll
                    nodes[vm.id] = vm.node
            progress.show(state_summary(state, nodes))
            if state["state"] in FINAL_STATES:
                return state
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"gave up waiting after {timeout:g} s: infrastructure {infrastructure} is still "
                    f"{state['state']} at IM, which goes on; follow it with: primage infra show {infrastructure}"
                )
            # Quick feedback first, then lighter on IM: 1 s, growing to 10 s after 4.5 minutes.
            time.sleep(min(10.0, 1.0 + (time.monotonic() - progress.started) / 30))
    except KeyboardInterrupt:
        raise StoppedWaiting(
            f"stopped waiting; infrastructure {infrastructure} goes on at IM: follow it with "
            f"`primage infra show {infrastructure}`, delete it with `primage undeploy {infrastructure}`"
        ) from None
    finally:
        progress.done()


RETRY_PAUSE = 2.0
DELETE_ATTEMPTS = 3
RECHECK_AFTER = 2.0


def _delete_when_ready(im: IMClient, infrastructure: str, deadline: float, force: bool) -> None:
    """DELETE, waiting while IM refuses it because it is still adding VMs (HTTP 409)."""
    told = False
    while True:
        try:
            im.destroy(infrastructure, force=force, timeout=max(1.0, deadline - time.monotonic()))
            return
        except IMError as exc:
            if exc.status != 409 or time.monotonic() >= deadline:
                raise
            if not told:
                print(
                    f"==> IM is still adding VMs to {infrastructure}; deleting it once they are there",
                    file=sys.stderr,
                    flush=True,
                )
                told = True
            time.sleep(RETRY_PAUSE)


def _still_there(im: IMClient, infrastructure: str) -> dict | None:
    """IM's state of the infrastructure if it still has it, now or a moment later."""
    for pause in (0.0, RECHECK_AFTER):
        time.sleep(pause)
        try:
            return im.state(infrastructure)
        except IMNotFound:
            continue
    return None


def undeploy(im: IMClient, infrastructure: str, timeout: float) -> None:
    """Delete the infrastructure and make sure IM no longer has it.

    IM 2.0 can write an infrastructure back to its database just after deleting it (one of its
    threads saves what it read before the deletion; seen here with young infrastructures, in
    about one deletion of eight): it then shows up again, VMs and all. So the deletion is
    checked at once and a moment later, and repeated, forced (its VMs went the first time),
    when the infrastructure came back."""
    deadline = time.monotonic() + timeout
    try:
        for attempt in range(DELETE_ATTEMPTS):
            try:
                _delete_when_ready(im, infrastructure, deadline, force=attempt > 0)
            except IMNotFound:
                if attempt == 0:
                    raise  # no such infrastructure
                return  # gone meanwhile
            state = _still_there(im, infrastructure)
            if state is None:
                return
            print(
                f"==> IM shows {infrastructure} again ({state['state']}) after deleting it; deleting it once more",
                file=sys.stderr,
                flush=True,
            )
    except KeyboardInterrupt:
        raise StoppedWaiting(f"stopped waiting; IM may go on deleting infrastructure {infrastructure}") from None
    raise IMError(
        f"IM at {im.url} still shows infrastructure {infrastructure} after {DELETE_ATTEMPTS} deletions; see "
        f"`primage infra show {infrastructure}`"
    )
