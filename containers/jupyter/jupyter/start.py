"""Start JupyterLab with token authentication always on, the token never on a command line or in a log.

The token comes, in this order, from:
1. JUPYTER_TOKEN_FILE: a file, e.g. a Kubernetes Secret mounted read-only;
2. JUPYTER_TOKEN: an environment variable (e.g. from a Secret through secretKeyRef); it is moved
   into a private file and removed from the environment, so neither the server's nor the
   kernels' environment holds it;
3. otherwise a token generated at the first start into TOKEN_HOME_FILE on the home volume
   (mode 0600) and reused afterwards.
A token shorter than MIN_TOKEN_LENGTH, empty or holding whitespace is refused (exit 64).

HTTPS: PRIMAGE_JUPYTER_TLS_DIR names a folder holding tls.crt (the certificate, its chain after
it) and tls.key (its private key), the keys of a Kubernetes TLS Secret mounted there. Both are
loaded once before the server starts, so a missing, unreadable or mismatched pair is one clear
line and exit 64, not a server that fails at its first connection. Without the variable the
server speaks plain HTTP: publish it on loopback only (as `primage notebook start` does).

Spawned by the notebook hub (containers/jupyterhub: JUPYTERHUB_API_TOKEN and
JUPYTERHUB_SERVICE_PREFIX set by its spawner), the server is `jupyterhub-singleuser` instead:
the hub's OAuth sign-in guards it, so no token of ours is made, and it speaks plain HTTP to the
hub's proxy inside the cluster; the home is prepared the same way.

The server reads the token from the file named by PRIMAGE_JUPYTER_TOKEN_PATH (see
jupyter_server_config.py). Arguments after `start.py` go to `jupyter lab`, except token or
password options, which are refused.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import sys
import tempfile
from pathlib import Path

MIN_TOKEN_LENGTH = 16
TOKEN_HOME_FILE = ".local/share/primage/jupyter-token"  # noqa: S105  (a path relative to $HOME, not a secret)
RESOLVED = "PRIMAGE_JUPYTER_TOKEN_PATH"
SPACE_VARIABLES = ("PRIMAGE_SPACE_DIR", "ONECLIENT_MOUNT_POINT")
DEFAULT_SPACE = "/mnt/onedata"
# Beside this script in the image (/opt/primage/jupyter/examples), one folder up in the repository.
_HERE = Path(__file__).resolve().parent
EXAMPLES = next((p for p in (_HERE / "examples", _HERE.parent / "examples") if p.is_dir()), _HERE / "examples")
SECRET_OPTIONS = ("token", "password")
TLS_OPTIONS = ("certfile", "keyfile")
TLS_DIR = "PRIMAGE_JUPYTER_TLS_DIR"
TLS_CERTIFICATE, TLS_KEY = "tls.crt", "tls.key"  # the keys of a kubernetes.io/tls Secret
USAGE = 64


class StartError(Exception):
    pass


def check_token(token: str, where: str) -> str:
    token = token.strip()
    if not token:
        raise StartError(f"{where} is empty: the notebook never runs without authentication")
    if any(c.isspace() for c in token):
        raise StartError(f"{where} holds whitespace inside the token")
    if len(token) < MIN_TOKEN_LENGTH:
        raise StartError(f"{where} holds a token of {len(token)} characters; at least {MIN_TOKEN_LENGTH} are needed")
    return token


def resolve_token_file(environ: dict, home: Path) -> tuple[Path, str]:
    """(file holding a valid token, where it came from); may write a file, never prints the token."""
    named = environ.get("JUPYTER_TOKEN_FILE", "").strip()
    if named:
        path = Path(named)
        try:
            check_token(path.read_text(encoding="utf-8"), f"JUPYTER_TOKEN_FILE ({path})")
        except OSError as error:
            raise StartError(f"JUPYTER_TOKEN_FILE ({path}) cannot be read: {error.strerror or error}") from None
        return path, f"the file {path} (JUPYTER_TOKEN_FILE)"
    if "JUPYTER_TOKEN" in environ:
        token = check_token(environ["JUPYTER_TOKEN"], "JUPYTER_TOKEN")
        return _private_file(token), "the JUPYTER_TOKEN variable"
    return _home_token(home)


def _private_file(token: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="primage-jupyter-"))  # mode 0700
    path = folder / "token"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return path


def _home_token(home: Path) -> tuple[Path, str]:
    path = home / TOKEN_HOME_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a copy restored with looser modes: readable by its owner only
        check_token(path.read_text(encoding="utf-8"), f"the generated token file {path}")
        return path, f"the file {path} (generated at the first start)"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise StartError(
            f"cannot write a token into {path} ({error.strerror or error}): mount a writable home volume "
            "or give JUPYTER_TOKEN_FILE"
        ) from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(secrets.token_hex(24) + "\n")
    return path, f"the file {path} (generated now; read it there)"


def tls_files(environ: dict) -> tuple[Path, Path] | None:
    """(certificate, key) of PRIMAGE_JUPYTER_TLS_DIR, proved to load as a pair; None for plain HTTP."""
    named = environ.get(TLS_DIR, "").strip()
    if not named:
        return None
    folder = Path(named)
    certificate, key = folder / TLS_CERTIFICATE, folder / TLS_KEY
    for path in (certificate, key):
        if not path.is_file():
            raise StartError(f"{TLS_DIR} ({folder}) holds no {path.name}: it needs {TLS_CERTIFICATE} and {TLS_KEY}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certificate, key)
    except PermissionError as error:
        raise StartError(f"{TLS_DIR} ({folder}): {error.filename or key} cannot be read by this user") from None
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or error.strerror or str(error)
        raise StartError(
            f"{TLS_DIR} ({folder}): {TLS_CERTIFICATE} and {TLS_KEY} are not a PEM certificate and its private key "
            f"({reason})"
        ) from None
    return certificate, key


def space_dir(environ: dict) -> Path:
    for name in SPACE_VARIABLES:
        if environ.get(name, "").strip():
            return Path(environ[name].strip())
    return Path(DEFAULT_SPACE)


def prepare_home(home: Path, environ: dict) -> None:
    """The example notebook and a link to the space in the home folder, at the first start."""
    examples = home / "examples"
    if EXAMPLES.is_dir() and not examples.exists():
        shutil.copytree(EXAMPLES, examples)
    link = home / "space"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(space_dir(environ))


def refuse_secret_options(arguments: list[str]) -> None:
    for argument in arguments:
        option = argument.split("=", 1)[0].lower()
        if not option.startswith("--"):
            continue
        if any(word in option for word in SECRET_OPTIONS):
            raise StartError(
                f"{option} on the command line would show the secret in the process list; "
                "use JUPYTER_TOKEN_FILE instead"
            )
        if any(word in option for word in TLS_OPTIONS):
            raise StartError(f"{option} is refused: give the certificate and key with {TLS_DIR} (tls.crt, tls.key)")


HUB_VARIABLES = ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_SERVICE_PREFIX")


def spawned_by_hub(environ: dict) -> bool:
    """True when JupyterHub's spawner started this container (it sets both variables)."""
    return all(environ.get(name) for name in HUB_VARIABLES)


def main(argv: list[str]) -> int:
    environ = dict(os.environ)
    home = Path(environ.get("HOME") or Path.home())
    if spawned_by_hub(environ):
        try:
            refuse_secret_options(argv)
            prepare_home(home, environ)
        except StartError as error:
            print(f"start: {error}", file=sys.stderr, flush=True)
            return USAGE
        print("start: spawned by the notebook hub: its sign-in guards this server", file=sys.stderr, flush=True)
        os.execvpe("jupyterhub-singleuser", ["jupyterhub-singleuser", *argv], environ)  # noqa: S606
        return 0  # not reached
    try:
        refuse_secret_options(argv)
        path, source = resolve_token_file(environ, home)
        tls = tls_files(environ)
        prepare_home(home, environ)
    except StartError as error:
        print(f"start: {error}", file=sys.stderr, flush=True)
        return USAGE
    environ.pop("JUPYTER_TOKEN", None)
    environ[RESOLVED] = str(path)
    print(f"start: token authentication on; the token is in {source}", file=sys.stderr, flush=True)
    if tls:
        print(f"start: HTTPS with the certificate {tls[0]}", file=sys.stderr, flush=True)
    else:
        print(f"start: plain HTTP ({TLS_DIR} not set): publish the port on loopback only", file=sys.stderr, flush=True)
    os.execvpe("jupyter", ["jupyter", "lab", *argv], environ)  # noqa: S606  (replaces this process)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
