"""`primage htc submit` and `primage apps ...` on the local backend: the real segmentation image over
sample volumes with known masks, followed from a second process, resumed after a kill, stopped
with Ctrl-C, retried, and its HTML report opened in headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
from apps_support import (
    PRIMAGE,
    RESULTS,
    Running,
    containers,
    images,
    leftovers,
    make_space,
    primage,
    result_folder,
    sample,
    session_cache,
    wait_for,
    writable_by_app,
)

pytestmark = pytest.mark.engine
__all__ = ["images", "make_space", "sample", "session_cache"]  # fixtures, imported to be found


def submit(name: str, space: Path, *options: str, files: str = "inputs/*"):
    return primage("htc", "submit", name, "--space", space, "--files", files, "--parallel", "2", *options)


def fingerprints(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under `folder`: its modification time and content digest."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def container_states(app: str) -> list[str]:
    return [
        subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{json .State}}", name],
                       capture_output=True, text=True, check=False).stdout
        for name in containers(app)
    ]  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def finished(images, sample, tmp_path_factory):
    """One application over the first four sample inputs (NIfTI, uncompressed NIfTI, a DICOM series)."""
    cases = json.loads((sample / "sample.json").read_text())["cases"][:4]
    space = tmp_path_factory.mktemp("finished") / "space"
    for case in cases:
        target = space / case["input"]
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (sample / case["input"]).is_dir() else shutil.copy2)(sample / case["input"], target)
    writable_by_app(space)
    done = submit("liver", space)
    return done, space, cases


# --- a whole run -------------------------------------------------------------------------------------


def test_one_task_per_input_with_the_results_of_the_task_contract(finished):
    done, space, cases = finished
    assert done.code == 0, done.err
    assert any(case["input"].startswith("inputs/series-") for case in cases)  # a DICOM series folder is one input
    for case in cases:
        folder = result_folder(space, "liver", case["input"])
        assert {p.name for p in folder.iterdir()} == RESULTS, case["input"]
        record = json.loads((folder / "segmentation.json").read_text())
        # The real segmentation ran on each: its volume is the phantom's known one.
        assert record["volume_ml"] == pytest.approx(case["truth_volume_ml"], rel=0.2), case["input"]
    assert leftovers(space) == []
    assert containers("liver") == []  # nothing is left on the engine


def test_the_run_ends_with_a_results_table_and_the_overview(finished):
    done, space, cases = finished
    lines = done.out.splitlines()
    assert lines[0].split() == ["task", "input", "state", "attempts", "exit", "started", "seconds", "result"]
    rows = {line.split()[1]: line.split() for line in lines[2 : 2 + len(cases)]}
    assert sorted(rows) == sorted(case["input"] for case in cases)
    assert all(row[2] == "done" and row[4] == "0" for row in rows.values())
    assert "volume_ml" in lines[2]
    assert f"{len(cases)} tasks: {len(cases)} done, 0 failed; state succeeded" in done.out
    overview = space / "outputs" / "liver" / "overview.png"
    assert f"overview picture: {overview}" in done.out
    width, height = png_size(overview)
    assert width >= 4 * 320  # one tile per task, four in a row
    assert height > 150


def test_progress_is_printed_as_lines_when_not_on_a_terminal(finished):
    done, _space, cases = finished
    progress = [line for line in done.err.splitlines() if line.startswith("liver: ")]
    assert progress, done.err
    assert "\r" not in done.err
    assert re.fullmatch(rf"liver: {len(cases)}/{len(cases)} done  0 running  0 failed  0 left  .* in all", progress[-1])


def test_submitting_again_runs_nothing_and_loses_nothing(finished):
    _done, space, cases = finished
    outputs = space / "outputs" / "liver"
    results = {k: v for k, v in fingerprints(outputs).items() if "/" in k}  # the overview is redrawn
    again = submit("liver", space, "--json")
    assert again.code == 0, again.err
    data = again.json()
    assert data["counts"]["done"] == len(cases)
    assert all(t["state"] == "done" and t["attempts"] == 1 for t in data["tasks"])
    assert {k: v for k, v in fingerprints(outputs).items() if "/" in k} == results


def test_a_second_process_lists_shows_and_reads_the_logs(finished):
    _done, _space, cases = finished
    listed = primage("apps", "list", "--json")
    assert listed.code == 0, listed.err
    (liver,) = [app for app in listed.json() if app["name"] == "liver"]
    assert (liver["kind"], liver["backend"], liver["state"]) == ("htc", "local", "succeeded")
    assert liver["counts"] == {"done": 4, "failed": 0, "running": 0, "total": 4, "left": 0}
    table = primage("apps", "list")
    header, _rule, *rows = table.out.splitlines()
    assert header.split() == ["name", "kind", "backend", "state", "done/failed/total", "age"]
    assert any(row.split()[:5] == ["liver", "htc", "local", "succeeded", "4/0/4"] for row in rows)

    shown = primage("apps", "show", "liver", "--json").json()
    assert [t["input"] for t in shown["tasks"]] == sorted(case["input"] for case in cases)
    for task in shown["tasks"]:
        assert task["exit_code"] == 0
        assert task["started"]
        assert task["finished"]
        assert task["seconds"] > 0
        assert Path(task["log"]).is_file()
    text = primage("apps", "show", "liver").out
    assert "liver: htc application on the local backend, succeeded" in text

    one = primage("apps", "logs", "liver", "0")
    assert one.code == 0
    assert f"{shown['tasks'][0]['input']}: lesion" in one.out
    every = primage("apps", "logs", "liver").out
    assert every.count("==> task ") == len(cases)
    by_input = primage("apps", "logs", "liver", shown["tasks"][1]["input"]).out
    assert f"{shown['tasks'][1]['input']}: lesion" in by_input


def test_output_names_the_results_and_copies_them(finished, tmp_path):
    _done, space, cases = finished
    found = primage("apps", "output", "liver", "--json").json()
    assert found["output"] == str(space / "outputs" / "liver")
    assert sorted(r["input"] for r in found["results"]) == sorted(c["input"] for c in cases)
    copied = primage("apps", "output", "liver", "--copy", tmp_path / "copy")
    assert copied.code == 0, copied.err
    for case in cases:
        relative = result_folder(space, "liver", case["input"]).relative_to(space / "outputs" / "liver")
        assert {p.name for p in (tmp_path / "copy" / relative).iterdir()} == RESULTS
    assert (tmp_path / "copy" / "overview.png").is_file()
    assert (tmp_path / "copy" / "report.html").is_file()


def test_a_name_taken_by_a_different_submission_is_refused(finished):
    _done, space, _cases = finished
    other = submit("liver", space, files="inputs/case-001.nii.gz")
    assert other.code == 1
    assert other.err.strip() == (
        "primage: the name liver is taken by a different submission (kind 'batch', files 'inputs/case-001.nii.gz'): "
        "delete it first (primage apps delete liver) or choose another name"
    )


@pytest.mark.parametrize("argv", [["list"], ["show", "liver"], ["logs", "liver"], ["show", "liver", "--json"]])
def test_a_reader_that_leaves_early_is_no_error(finished, argv):
    """`primage apps ... | head`: the pipe's reader is gone before primage writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        completed = subprocess.run(
            [str(PRIMAGE), "apps", *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_end)
    assert completed.returncode == 141  # as a shell reports a command ended by SIGPIPE
    assert "Traceback" not in completed.stderr
    assert "internal error" not in completed.stderr
    headed = subprocess.run(
        ["sh", "-c", f"{PRIMAGE} apps {' '.join(argv)} | head -n 1"], capture_output=True, text=True, timeout=120
    )
    assert headed.returncode == 0
    assert headed.stderr == ""


def test_the_html_report_shows_every_task_in_chromium(finished, tmp_path):
    _done, space, cases = finished
    report = space / "outputs" / "liver" / "report.html"
    dom = chromium_dom(report, tmp_path)
    rows = re.findall(r'<tr class="task (\w+)" data-index="(\d+)" data-state="(\w+)">', dom)
    assert sorted(int(index) for _c, index, _s in rows) == list(range(len(cases)))
    assert {state for _c, _i, state in rows} == {"done"}
    for case in cases:
        assert f"<code>{case['input']}</code>" in dom
    assert '<span class="missing">' not in dom  # every overlay loaded
    assert dom.count("<img ") == len(cases)
    # A picture that is gone says so in the page.
    missing_copy = tmp_path / "report"
    shutil.copytree(space / "outputs" / "liver", missing_copy)
    first = next(missing_copy.rglob("overlay.png"))
    first.unlink()
    broken = chromium_dom(missing_copy / "report.html", tmp_path)
    assert broken.count('<span class="missing">picture missing: ') == 1


def chromium_dom(page: Path, tmp_path: Path) -> str:
    shown = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chromium'}",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "</html>" in shown.stdout
    return shown.stdout


# --- faults --------------------------------------------------------------------------------------------


def test_a_killed_run_resumes_and_loses_no_finished_result(make_space, tmp_path):
    space, cases = make_space(4)
    running = Running(tmp_path, "htc", "submit", "kidney", "--space", space, "--files", "inputs/*", "--parallel", "2")
    try:
        first = result_folder(space, "kidney", cases[0]["input"])
        wait_for(lambda: (first / "_SUCCESS").exists() and len(containers("kidney")) >= 1, what="a first result")
        running.signal(signal.SIGKILL)  # no clean-up at all, as a crash or a reboot
        running.wait()
    finally:
        running.kill_if_running()
    finished = {c["input"]: fingerprints(result_folder(space, "kidney", c["input"])) for c in cases}
    finished = {k: v for k, v in finished.items() if "_SUCCESS" in v}
    assert finished
    assert containers("kidney")  # the killed run left its containers running

    shown = primage("apps", "show", "kidney", "--json").json()
    assert shown["state"] == "incomplete"  # no process runs it any more

    resumed = submit("kidney", space, "--json")
    assert resumed.code == 0, resumed.err
    assert "an earlier run of kidney was killed" in resumed.err
    assert all(t["state"] == "done" for t in resumed.json()["tasks"])
    for case_input, before in finished.items():
        assert fingerprints(result_folder(space, "kidney", case_input)) == before  # not redone, not touched
    assert containers("kidney") == []
    assert leftovers(space) == []


def test_ctrl_c_leaves_no_container_and_no_partial_result(make_space, tmp_path):
    space, cases = make_space(6)
    running = Running(tmp_path, "htc", "submit", "brain", "--space", space, "--files", "inputs/*", "--parallel", "2")
    try:
        wait_for(lambda: len(containers("brain")) == 2, what="two running tasks")
        time.sleep(1.0)  # inside the tasks, past their start
        running.signal(signal.SIGINT)
        stopped = running.wait(timeout=120)
    finally:
        running.kill_if_running()
    assert stopped.code == 130, stopped.err
    assert "Resume with the same command: primage htc submit brain --space" in stopped.err
    assert "Traceback" not in stopped.err
    assert containers("brain") == [], (stopped.err, container_states("brain"))
    assert leftovers(space) == []
    outputs = space / "outputs" / "brain"
    for case in cases:
        folder = result_folder(space, "brain", case["input"])
        # Complete, or nothing at all: never a result without its marker.
        assert not folder.exists() or {p.name for p in folder.iterdir()} == RESULTS, case["input"]
    states = {t["state"] for t in primage("apps", "show", "brain", "--json").json()["tasks"]}
    assert "interrupted" in states or "pending" in states
    resumed = submit("brain", space)
    assert resumed.code == 0, resumed.err
    assert all({p.name for p in result_folder(space, "brain", c["input"]).iterdir()} == RESULTS for c in cases), (
        resumed.out
    )
    assert outputs.is_dir()


def test_failures_are_retried_to_the_limit_and_bad_input_is_not(make_space, tmp_path):
    space, cases = make_space(2)
    (space / "inputs" / "broken.nii.gz").write_bytes(os.urandom(4000))  # bad input: exit 65
    stuck, flaky = (result_folder(space, "spleen", c["input"]) for c in cases)
    # A result folder that cannot be made (a file is in its way): exit 73, every attempt.
    stuck.parent.mkdir(parents=True)
    stuck.write_text("in the way")
    os.chmod(stuck, 0o444)
    # A result folder the task cannot write, once: the retry succeeds after the clean-up.
    flaky.mkdir()
    os.chmod(flaky, 0o555)  # noqa: S103  (read-only on purpose)
    subprocess.run(["chown", "-R", "1000:1000", str(space / "outputs")], check=True)
    os.chown(stuck, 0, 0)
    os.chown(flaky, 0, 0)
    done = submit("spleen", space, "--retries", "1", "--json")
    assert done.code == 1
    tasks = {Path(t["input"]).name: t for t in done.json()["tasks"]}
    broken = tasks["broken.nii.gz"]
    assert (broken["state"], broken["attempts"], broken["exit_code"]) == ("failed", 1, 65)
    assert broken["error"].startswith("exit 65: bad input (do not retry)")
    assert broken["error"].endswith("(not retried)")
    stuck_task = tasks[Path(cases[0]["input"]).name]
    assert (stuck_task["state"], stuck_task["attempts"], stuck_task["exit_code"]) == ("failed", 2, 73)
    assert "cannot write output" in stuck_task["error"]
    assert "cannot write output" in Path(stuck_task["log"]).read_text()
    flaky_task = tasks[Path(cases[1]["input"]).name]
    assert (flaky_task["state"], flaky_task["attempts"]) == ("done", 2)
    assert "2 task(s) failed" in done.err
    log = primage("apps", "logs", "spleen", str(stuck_task["index"]))
    assert "cannot write output" in log.out
    dom = chromium_dom(space / "outputs" / "spleen" / "report.html", tmp_path)
    assert dom.count('data-state="failed"') == 2
    assert "bad input (do not retry)" in dom


def test_an_image_that_exits_at_once_stops_the_run(make_space):
    space, cases = make_space(6)
    done = submit("thyroid", space, "--image", "debian:trixie-slim", "--json")
    assert done.code == 1
    assert "primage: the image debian:trixie-slim exits at once: its first 3 task attempts failed" in done.err
    tasks = done.json()["tasks"]
    assert sum(t["attempts"] > 0 for t in tasks) < len(cases)
    failed = [t for t in tasks if t["state"] == "failed"]
    assert failed
    assert failed[0]["error"].startswith("exit 0 without writing its results (no _SUCCESS in outputs/thyroid/")
    assert containers("thyroid") == []


# --- two terminals, a terminal, a batch ----------------------------------------------------------------


def test_a_second_terminal_follows_a_running_application(make_space, tmp_path):
    space, _cases = make_space(2)
    running = Running(tmp_path, "htc", "submit", "lung", "--space", space, "--files", "inputs/*", "--parallel", "1")
    try:
        wait_for(lambda: containers("lung"), what="a running task")
        shown = primage("apps", "show", "lung", "--json").json()
        assert shown["state"] == "running"
        assert shown["tasks"][0]["state"] == "running"
        followed = primage("apps", "logs", "lung", "0", "--follow", timeout=300)
        assert followed.code == 0
        assert f"{shown['tasks'][0]['input']}: lesion" in followed.out  # it waited for the task's end
        done = running.wait()
    finally:
        running.kill_if_running()
    assert done.code == 0, done.err
    every = primage("apps", "logs", "lung", "--follow", timeout=60)  # ended: prints everything and returns
    assert every.out.count("==> task ") == 2


def test_on_a_terminal_the_progress_bar_is_redrawn_in_place(make_space):
    space, cases = make_space(1)
    command = [
        "batch", "submit", "heart", "--space", str(space), "--files", cases[0]["input"],
    ]  # fmt: skip
    code, screen = run_in_terminal(command)
    assert code == 0, screen
    assert re.search(r"\r\[#{20}\] heart: 1/1 done  0 running  0 failed  0 left", screen), screen
    kinds = primage("apps", "list", "--json").json()
    assert next(app for app in kinds if app["name"] == "heart")["kind"] == "batch"


def run_in_terminal(argv: list[str], timeout: float = 300) -> tuple[int, str]:
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(PRIMAGE), *argv], stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=30), output.decode(errors="replace")


def test_delete_removes_the_application_and_its_results_unless_kept(make_space):
    space, cases = make_space(1)
    for name in ("colon", "rectum"):
        assert submit(name, space, files=cases[0]["input"]).code == 0
    kept = primage("apps", "delete", "colon", "--keep-output", "--json")
    assert kept.code == 0, kept.err
    assert (result_folder(space, "colon", cases[0]["input"]) / "_SUCCESS").exists()
    gone = primage("apps", "delete", "rectum")
    assert gone.code == 0, gone.err
    assert gone.out.startswith("deleted rectum: 1 result folder(s) in ")
    assert not (space / "outputs" / "rectum").exists()
    names = [app["name"] for app in primage("apps", "list", "--json").json()]
    assert "colon" not in names
    assert "rectum" not in names
    again = primage("apps", "show", "rectum")
    assert again.code == 1
    assert "primage: no application named rectum" in again.err
