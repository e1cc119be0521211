"""Token handling of the start script and the server settings: authentication always on, no secret shown."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import start

TOKEN = "f3a9c1d2e4b5a6978877665544332211"  # noqa: S105  (a value for the tests)
CONFIG = Path("/etc/jupyter/jupyter_server_config.py")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_mounted_token_file_is_used_as_it_is(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    path, source = start.resolve_token_file({"JUPYTER_TOKEN_FILE": str(secret)}, tmp_path / "home")
    assert path == secret
    assert "JUPYTER_TOKEN_FILE" in source
    assert TOKEN not in source


def test_a_token_variable_moves_into_a_private_file(tmp_path):
    path, source = start.resolve_token_file({"JUPYTER_TOKEN": TOKEN}, tmp_path / "home")
    assert path.read_text().strip() == TOKEN
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert TOKEN not in source


def test_without_a_token_one_is_generated_once_into_a_private_file_on_the_home_volume(tmp_path):
    home = tmp_path / "home"
    path, source = start.resolve_token_file({}, home)
    assert path == home / start.TOKEN_HOME_FILE
    token = path.read_text().strip()
    assert len(token) == 48
    assert int(token, 16) >= 0
    assert mode(path) == 0o600
    assert "generated now" in source
    path.chmod(0o644)
    again, source = start.resolve_token_file({}, home)
    assert again.read_text().strip() == token, "the token survives a restart"
    assert mode(again) == 0o600, "loose modes are tightened"
    assert "generated at the first start" in source


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("short-token", "at least 16"),
        ("has space inside token!!", "whitespace"),
    ],
    ids=["empty", "blank", "short", "whitespace"],
)
@pytest.mark.parametrize("where", ["file", "variable"])
def test_empty_short_or_spaced_tokens_are_refused(tmp_path, token, message, where):
    environ = {"JUPYTER_TOKEN": token}
    if where == "file":
        (tmp_path / "token").write_text(token)
        environ = {"JUPYTER_TOKEN_FILE": str(tmp_path / "token")}
    with pytest.raises(start.StartError, match=message):
        start.resolve_token_file(environ, tmp_path / "home")


def test_a_home_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocked = tmp_path / "home"
    blocked.write_text("a file where the home folder should be")
    with pytest.raises(start.StartError, match="mount a writable home volume"):
        start.resolve_token_file({}, blocked)


@pytest.mark.parametrize(
    "argument",
    [
        "--ServerApp.token=abc",
        "--IdentityProvider.token",
        "--NotebookApp.token=x",
        "--PasswordIdentityProvider.hashed_password=y",
    ],
)
def test_token_and_password_options_are_refused_on_the_command_line(argument):
    with pytest.raises(start.StartError, match="process list"):
        start.refuse_secret_options(["--port=9999", argument])


def test_main_refuses_a_short_token_with_one_line_and_exit_64(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("JUPYTER_TOKEN", "abc123")
    assert start.main([]) == start.USAGE == 64
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "abc123" not in err


def test_the_first_start_copies_the_example_and_links_the_space(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    start.prepare_home(home, {"ONECLIENT_MOUNT_POINT": "/mnt/space"})
    assert (home / "examples" / "space-volume.ipynb").is_file()
    assert os.readlink(home / "space") == "/mnt/space"
    start.prepare_home(home, {"PRIMAGE_SPACE_DIR": "/elsewhere"})
    assert os.readlink(home / "space") == "/mnt/space", "an existing link is left alone"


def load_settings(environ: dict) -> dict:
    """The server's settings as traitlets loads them, in a fresh interpreter."""
    script = (
        "import json; from traitlets.config.loader import PyFileConfigLoader as L;"
        f"c = L('{CONFIG.name}', path='{CONFIG.parent}').load_config();"
        "print(json.dumps({'token': c.IdentityProvider.token, 'ip': c.ServerApp.ip,"
        " 'browser': c.ServerApp.open_browser, 'news': c.LabApp.news_url}))"
    )
    done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_server_settings_read_the_resolved_token_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    settings = load_settings({**os.environ, "HOME": str(tmp_path), start.RESOLVED: str(secret)})
    assert settings == {"token": TOKEN, "ip": "0.0.0.0", "browser": False, "news": None}  # noqa: S104


def test_a_server_started_by_hand_still_gets_a_token(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_TOKEN")}
    settings = load_settings({**environ, "HOME": str(tmp_path)})
    assert len(settings["token"]) == 48
    assert (tmp_path / start.TOKEN_HOME_FILE).read_text().strip() == settings["token"]


def test_the_example_notebook_is_valid_and_has_a_parameters_cell():
    import nbformat

    notebook = nbformat.read(start.EXAMPLES / "space-volume.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert notebook.metadata.kernelspec.name == "python3"


def test_the_health_check_fails_when_no_server_answers(monkeypatch):
    monkeypatch.setenv("PRIMAGE_JUPYTER_PORT", "1")
    done = subprocess.run(
        [sys.executable, str(Path(start.__file__).with_name("healthcheck.py"))],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 1
    assert "unhealthy" in done.stderr


def test_without_the_tls_folder_the_server_speaks_plain_http():
    assert start.tls_files({}) is None
    assert start.tls_files({start.TLS_DIR: "  "}) is None


def test_a_tls_folder_without_its_key_or_with_no_pem_in_it_is_refused(tmp_path):
    (tmp_path / "tls.crt").write_text("not a certificate\n")
    with pytest.raises(start.StartError, match=r"holds no tls\.key: it needs tls\.crt and tls\.key"):
        start.tls_files({start.TLS_DIR: str(tmp_path)})
    (tmp_path / "tls.key").write_text("not a key\n")
    with pytest.raises(start.StartError, match="are not a PEM certificate and its private key"):
        start.tls_files({start.TLS_DIR: str(tmp_path)})


@pytest.mark.parametrize("argument", ["--ServerApp.certfile=/tmp/c.pem", "--ServerApp.keyfile", "--keyfile=k"])
def test_certificate_options_are_refused_for_the_tls_folder(argument):
    with pytest.raises(start.StartError, match="PRIMAGE_JUPYTER_TLS_DIR"):
        start.refuse_secret_options([argument])


HUB_ENVIRONMENT = {"JUPYTERHUB_API_TOKEN": "hub-api-token-for-the-test", "JUPYTERHUB_SERVICE_PREFIX": "/user/m/"}


def test_spawned_by_the_hub_it_runs_jupyterhub_singleuser_and_makes_no_token(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(os, "execvpe", lambda file, argv, environ: started.append((file, argv, environ)))
    for name, value in {**HUB_ENVIRONMENT, "HOME": str(tmp_path), "PRIMAGE_SPACE_DIR": "/mnt/space"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    assert start.main(["--debug"]) == 0
    (file, argv, _environ), *_ = started
    assert (file, argv) == ("jupyterhub-singleuser", ["jupyterhub-singleuser", "--debug"])
    assert not (tmp_path / start.TOKEN_HOME_FILE).exists()
    assert (tmp_path / "examples" / "space-volume.ipynb").is_file()
    assert os.readlink(tmp_path / "space") == "/mnt/space"
    assert start.main(["--IdentityProvider.token=x"]) == start.USAGE


def test_spawned_by_the_hub_the_server_settings_set_no_token(tmp_path):
    script = (
        "from traitlets.config.loader import PyFileConfigLoader as L;"
        f"c = L('{CONFIG.name}', path='{CONFIG.parent}').load_config();"
        "print('token' in c.IdentityProvider, c.ServerApp.ip)"
    )
    environ = {**os.environ, **HUB_ENVIRONMENT, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "0.0.0.0"]  # noqa: S104 (the setting read back)
    assert not (tmp_path / start.TOKEN_HOME_FILE).exists()
