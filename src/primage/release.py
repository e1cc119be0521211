"""The project's release pin: one version, read from ansible/galaxy.yml, and the references
templates make to the repository at that release."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from . import paths, yamlio
from .errors import PrimageError

# A reference into the project's repository that names a release tag (vX.Y.Z).
UNPINNED_REFS = ("master", "main", "latest", "HEAD", "develop")


@dataclass(frozen=True)
class Release:
    version: str
    repository: str  # https://gitlab.com/<group>/<project>

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def raw_base(self) -> str:
        """Base URL of the repository's files at the release tag (GitLab raw layout)."""
        return f"{self.repository}/-/raw/{self.tag}/"

    def raw_url(self, relative_path: str) -> str:
        return self.raw_base + relative_path.lstrip("/")

    def pinned_refs(self, text: str) -> list[str]:
        """Every reference to this repository in `text` (raw URLs and git requirements)."""
        repo = re.escape(self.repository)
        pattern = rf"{repo}(?:/-/raw/([^/\s'\"]+)/|\.git#/ansible/?[,'\"]\s*(?:version\s*=\s*')?([^\s'\")]+))"
        return [raw or git for raw, git in re.findall(pattern, text)]


@cache
def current() -> Release:
    galaxy_file = paths.ansible_dir() / "galaxy.yml"
    galaxy, lines = yamlio.load_file(galaxy_file)
    for key in ("version", "repository"):
        if not isinstance(galaxy, dict) or not galaxy.get(key):
            raise PrimageError(
                f"'{key}' is required: it is the project's release pin",
                file=paths.relative(galaxy_file),
                field=key,
            )
    if not re.fullmatch(r"\d+\.\d+\.\d+", str(galaxy["version"])):
        raise PrimageError(
            f"version '{galaxy['version']}' is not X.Y.Z",
            file=paths.relative(galaxy_file),
            line=lines.line_of("version"),
            field="version",
        )
    return Release(str(galaxy["version"]), str(galaxy["repository"]).rstrip("/"))
