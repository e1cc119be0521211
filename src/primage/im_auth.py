"""IM credentials: the auth file, read from disk and turned into IM's AUTHORIZATION header.

The file is IM's own format, as im_client and EC3 read it: one line per service,
`key = value` pairs separated by `;`, values quoted with ' or " when they hold `;`, `#`
comments. Its content leaves this process only in the header of requests to IM: it is
never printed, logged, written elsewhere or put on a command line, error messages name
its lines and keys but never a value, and a file that other users can read is refused.

Where a value comes from is one table, VALUE_SOURCES: a literal, `file(PATH)` read here
(as im_client does, rather than letting IM look for PATH on its own machine), `command(CMD)`
run here (im_client's way to write `token = command(oidc-token egi)`), or `oidc-agent(ACCOUNT)`.
An access token (`token = ...`, IM's OpenID Connect login) is read again from its source
whenever it nears expiry (see im_tokens): a file holding one must be private, and an expired
one stops primage with a message saying how to renew it.
"""

from __future__ import annotations

import re
import shlex
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import im_tokens
from .errors import PrimageError

IM_TYPE = "InfrastructureManager"
# IM splits the header into lines at a literal backslash-n, and turns a doubled backslash-n
# inside a value back into a newline (multi-line values: certificates, private keys).
HEADER_LINE_SEPARATOR = "\\n"
HEADER_VALUE_NEWLINE = "\\\\n"
_ID = re.compile(r"[a-zA-Z_.][\w.-]*")
_SOURCE = re.compile(r"(?P<name>[\w-]+)\((?P<argument>.*)\)", re.S)


# Keys whose values are secrets: a file holding one must be readable only by its owner.
SECRET_KEYS = {"password", "token", "private_key", "proxy", "secret_key", "client_secret"}


def _file_value(argument: str, where: str, key: str) -> str | im_tokens.Token:
    path = Path(argument.strip()).expanduser()
    if key == "token":
        return im_tokens.file_token(path, where)
    if key in SECRET_KEYS and path.exists():
        im_tokens.refuse_shared_secret_file(path, where)
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise PrimageError(f"{where}: cannot read the file its value names: {exc.strerror or exc}") from None


def _command_value(argument: str, where: str, key: str) -> im_tokens.Token:
    try:
        argv = shlex.split(argument)
    except ValueError as exc:
        raise PrimageError(f"{where}: command({argument.split()[0] if argument.split() else ''}...): {exc}") from None
    return im_tokens.command_token(argv, where)


def _oidc_agent_value(argument: str, where: str, key: str) -> im_tokens.Token:
    return im_tokens.oidc_agent_token(argument, where)


# name(argument) -> the value, or a token read again when it nears expiry; a name not listed
# here is part of a literal value.
VALUE_SOURCES: dict[str, Callable[[str, str, str], str | im_tokens.Token]] = {
    "file": _file_value,
    "command": _command_value,
    "oidc-agent": _oidc_agent_value,
}


@dataclass(frozen=True)
class Credentials:
    """The parsed auth file. Values stay out of repr, so a stray print or traceback shows none."""

    source: Path
    lines: tuple[tuple[tuple[str, str], ...], ...] = field(repr=False)
    # (line index, key) -> a value read again from its source when it nears expiry (access tokens)
    tokens: dict[tuple[int, str], im_tokens.Token] = field(default_factory=dict, repr=False)

    def types(self) -> list[str]:
        return [dict(line).get("type", "") for line in self.lines]

    def im_token(self) -> im_tokens.Token | None:
        """The access token of the first InfrastructureManager line that logs in with one."""
        for index, line in enumerate(self.lines):
            if dict(line).get("type") == IM_TYPE and (index, "token") in self.tokens:
                return self.tokens[(index, "token")]
        return None

    def uses_token(self) -> bool:
        return any(dict(line).get("type") == IM_TYPE and "token" in dict(line) for line in self.lines)

    def header(self) -> str:
        """IM's AUTHORIZATION header value: the lines joined by IM's separators (tokens as fresh as needed)."""
        return HEADER_LINE_SEPARATOR.join(
            "; ".join(f"{key} = {_header_value(self._value(index, key, value))}" for key, value in line)
            for index, line in enumerate(self.lines)
        )

    def _value(self, index: int, key: str, value: str) -> str:
        token = self.tokens.get((index, key))
        return token.current() if token else value


def _header_value(value: str) -> str:
    encoded = value.replace("\r\n", "\n").replace("\n", HEADER_VALUE_NEWLINE)
    if not re.search(r"[;='\"]|^\s|\s$", encoded):
        return encoded
    return f"'{encoded}'" if "'" not in encoded else f'"{encoded}"'


def _split(text: str, separator: str) -> list[str]:
    """Split at `separator` outside single or double quotes (IM's own rule)."""
    parts, current, quote = [], "", None
    for char in text:
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
        if char == separator and quote is None:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _resolve(value: str, where: str, key: str) -> str | im_tokens.Token:
    match = _SOURCE.fullmatch(value)
    if match and match["name"] in VALUE_SOURCES:
        return VALUE_SOURCES[match["name"]](match["argument"], where, key)
    return value.replace("\\n", "\n")  # IM's escape for newlines inside a value


def _parse_line(text: str, where: str) -> tuple[tuple[tuple[str, str], ...], dict[str, im_tokens.Token]]:
    pairs, tokens = [], {}
    for token in _split(text, ";"):
        if not token.strip():
            continue
        key_value = _split(token, "=")
        key = key_value[0].strip()
        if len(key_value) < 2 or not re.fullmatch(r"[\w.-]+", key):
            raise PrimageError(
                f"{where}: expected 'key = value' pairs separated by ';' (quote a value that holds ; or =)"
            )
        value = _resolve(_unquote("=".join(key_value[1:])), f"{where} ({key})", key)
        if isinstance(value, im_tokens.Token):
            tokens[key] = value
            value = value.current()  # read now: a source that cannot give one stops primage here
        pairs.append((key, value))
    keys = [key for key, _ in pairs]
    if "type" not in keys:
        raise PrimageError(f"{where}: every line needs a 'type' (InfrastructureManager, OpenStack, Dummy, ...)")
    if len(set(keys)) != len(keys):
        raise PrimageError(f"{where}: a key appears twice on the line")
    identifier = dict(pairs).get("id")
    if identifier is not None and not _ID.fullmatch(identifier):
        raise PrimageError(
            f"{where}: id '{identifier}' is not valid (letters, digits, _ . -; not starting with a digit)"
        )
    return tuple(pairs), tokens


def refuse_if_shared(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrimageError(
            f"other users can read this IM auth file (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}",
            file=path,
        )


def load(path: str | Path) -> Credentials:
    """Read and check an auth file; refuse it when others can read it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PrimageError("IM auth file not found (give --auth FILE or set PRIMAGE_IM_AUTH)", file=path)
    refuse_if_shared(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PrimageError(f"cannot read the IM auth file: {exc}", file=path) from None
    lines, tokens = [], {}
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("Bearer "):
            raise PrimageError(
                f"{path}:{number}: a bare 'Bearer' access token is not supported by primage yet; write "
                f"'type = {IM_TYPE}; username = ...; password = ...' (or '; token = ...') instead"
            )
        line, line_tokens = _parse_line(stripped, f"{path}:{number}")
        tokens.update({(len(lines), key): token for key, token in line_tokens.items()})
        lines.append(line)
    credentials = Credentials(path.resolve(), tuple(lines), tokens)
    im_lines = [dict(line) for line in lines if dict(line).get("type") == IM_TYPE]
    if not im_lines:
        raise PrimageError(
            f"no 'type = {IM_TYPE}' line: IM needs one (username and password) to know whose infrastructures these are",
            file=path,
        )
    if not any({"username", "password"} <= set(line) or "token" in line for line in im_lines):
        raise PrimageError(f"the {IM_TYPE} line needs a username and a password (or a token)", file=path)
    return credentials
