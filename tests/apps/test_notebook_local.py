"""`primage notebook start|url|stop` on the local backend, with the real jupyter image: the URL answers,
the token logs in, and the token is nowhere it must not be (arguments, environment, logs, inspect)."""

from __future__ import annotations

import json
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from apps_support import containers, images, make_space, primage, sample, session_cache

pytestmark = pytest.mark.engine
__all__ = ["images", "make_space", "sample", "session_cache"]  # fixtures, imported to be found


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310  (a loopback URL of the test)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_without_redirect(url: str) -> int:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def everywhere_the_token_must_not_be(name: str) -> str:
    """The container's inspect data (arguments, environment, labels), its log, every process's arguments."""
    (container,) = containers(name)
    inspected = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=True)
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return "\n".join([inspected, logs.stdout, logs.stderr, processes])


def test_a_notebook_starts_answers_keeps_its_token_private_and_restarts(images, make_space, tmp_path):
    space, _cases = make_space(1)
    started = primage("notebook", "start", "lab", "--space", space, "--json")
    assert started.code == 0, started.err
    data = started.json()
    url, token_file = data["url"], Path(data["token_file"])
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/lab")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert token not in started.out + started.err

    # The URL without the token is refused; with it, the notebook is open.
    assert status_without_redirect(url) == 302
    assert primage("notebook", "url", "lab").out.strip() == url
    full = primage("notebook", "url", "lab", "--with-token").out.strip()
    assert full == f"{url}?token={token}"
    assert http(full)[0] == 200
    api = url.removesuffix("/lab")
    assert http(f"{api}/api/contents")[0] == 403
    # The space is at its in-container mount path, as on a cluster; the home keeps what is written.
    code, listing = http(f"{api}/api/contents/space/inputs?token={token}")
    assert code == 200, listing
    assert {item["name"] for item in json.loads(listing)["content"]} == {p.name for p in (space / "inputs").iterdir()}
    note = json.dumps({"type": "file", "format": "text", "content": "kept across restarts"}).encode()
    assert http(f"{api}/api/contents/note.txt?token={token}", "PUT", note)[0] in (200, 201)

    assert token not in everywhere_the_token_must_not_be("lab")
    (container,) = containers("lab")
    environment = subprocess.run(
        ["docker", "inspect", "--format", "{{json .Config.Env}}", container], capture_output=True, text=True, check=True
    ).stdout
    assert "JUPYTER_TOKEN_FILE=/etc/primage/notebook-token/token" in environment
    mode = subprocess.run(
        ["docker", "exec", container, "stat", "-c", "%a %u", "/etc/primage/notebook-token/token"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert mode == ["400", "1000"]  # a 0400 file of the notebook's user, mounted read-only

    listed = {app["name"]: app for app in primage("apps", "list", "--json").json()}
    assert (listed["lab"]["kind"], listed["lab"]["state"], listed["lab"]["url"]) == ("notebook", "running", url)
    assert primage("notebook", "start", "lab", "--space", space).code == 0  # running already: the same notebook
    assert len(containers("lab")) == 1

    stopped = primage("notebook", "stop", "lab")
    assert stopped.code == 0, stopped.err
    assert containers("lab") == []
    assert primage("apps", "show", "lab", "--json").json()["state"] == "stopped"
    not_running = primage("notebook", "url", "lab")
    assert not_running.code == 1
    assert "the notebook lab is not running: start it with `primage notebook start lab --space" in not_running.err

    again = primage("notebook", "start", "lab", "--space", space, "--json")
    assert again.code == 0, again.err
    assert token_file.read_text().strip() == token  # the same token
    api = again.json()["url"].removesuffix("/lab")
    code, kept = http(f"{api}/api/contents/note.txt?token={token}")
    assert code == 200
    assert json.loads(kept)["content"] == "kept across restarts"

    deleted = primage("apps", "delete", "lab")
    assert deleted.code == 0, deleted.err
    assert "volume " in deleted.out
    assert containers("lab") == []
    assert not token_file.exists()


def test_a_notebook_name_is_not_an_htc_application(images, make_space):
    space, cases = make_space(1)
    assert primage("batch", "submit", "scan", "--space", space, "--files", cases[0]["input"]).code == 0
    refused = primage("notebook", "start", "scan", "--space", space)
    assert refused.code == 1
    assert refused.err.startswith("primage: the name scan is taken by a different submission (kind 'notebook'")
    url = primage("notebook", "url", "scan")
    assert url.code == 2
    assert "scan is not a notebook but an application of kind batch" in url.err
