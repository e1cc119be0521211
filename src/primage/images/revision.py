"""Tags and OCI labels from git: `<version>-g<short revision>`, `-dirty` for uncommitted changes.

An image is dirty when its build context, or that of an image it requires, differs from the
commit (see folder_dirty): what it was built from is then not the commit its tag names. The plain
`<version>` is never a tag: two commits with the same version would share it, which makes it
`latest` under another name.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import paths, release
from ..errors import PrimageError
from .spec import APP_IMAGE_ARG, Image, Variant

LABEL_PREFIX = "org.opencontainers.image."
# On a variant: the layer it was built from (name and version of the layer's image.yml).
VARIANT_LABEL = "org.primage.variant"


@dataclass(frozen=True)
class Revision:
    commit: str  # the full commit id of HEAD
    short: str  # its abbreviation, 7 characters or more when needed to be unique
    committed: str  # committer date of HEAD, RFC 3339 in UTC


def _git(root: Path, *arguments: str) -> str:
    try:
        completed = subprocess.run(
            ["git", "-C", str(root), *arguments], capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise PrimageError("git is not installed; image tags name the git revision") from None
    if completed.returncode != 0:
        raise PrimageError(
            f"cannot read the git revision ({completed.stderr.strip() or 'git failed'}); image tags are "
            "<version>-g<revision>, so build from a git checkout with at least one commit",
            file=root,
        )
    return completed.stdout.strip()


def current(root: Path | None = None) -> Revision:
    root = root or paths.root()
    commit = _git(root, "rev-parse", "HEAD")
    short = _git(root, "rev-parse", "--short=7", "HEAD")
    committed = datetime.fromisoformat(_git(root, "show", "-s", "--format=%cI", "HEAD"))
    return Revision(commit, short, _rfc3339(committed))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def context_files(folder: Path) -> set[str]:
    """What the build context of `folder` sends, its .dockerignore applied: paths relative to it."""
    from docker.utils.build import exclude_paths

    ignore = folder / ".dockerignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    return exclude_paths(str(folder), [line.strip() for line in lines if line.strip() and not line.startswith("#")])


def folder_dirty(folder: Path) -> bool:
    """Whether the build context of `folder` differs from the commit: a tracked file changed
    (staged or not) or deleted, or a file git does not track (untracked or ignored, such as
    __pycache__ left by a local test run) that the context sends."""
    if _git(folder, "diff", "--name-only", "--relative", "HEAD", "--", "."):
        return True
    untracked = [name for name in _git(folder, "ls-files", "--others", "-z", "--", ".").split("\0") if name]
    return bool(untracked) and not context_files(folder).isdisjoint(untracked)


def dirty_images(order: list[Image]) -> set[str]:
    """Image folders whose build does not match the commit: their own changes or a requirement's.
    `order` lists requirements before the images that need them."""
    dirty: set[str] = set()
    for image in order:
        if folder_dirty(image.folder) or any(required in dirty for required in image.requires):
            dirty.add(image.directory)
    return dirty


def tag(version: str, revision: Revision, dirty: bool) -> str:
    return f"{version}-g{revision.short}" + ("-dirty" if dirty else "")


def labels(image: Image, revision: Revision, dirty: bool, now: datetime | None = None) -> dict[str, str]:
    """The OCI labels the pipeline adds. `created` is the commit time for a clean build, so an
    unchanged image rebuilds to the very same image id from the layer cache; a dirty build is
    stamped with the build time."""
    created = _rfc3339(now or datetime.now(UTC)) if dirty else revision.committed
    return {
        LABEL_PREFIX + "source": release.current().repository,
        LABEL_PREFIX + "revision": revision.commit + ("-dirty" if dirty else ""),
        LABEL_PREFIX + "version": image.version,
        LABEL_PREFIX + "created": created,
    }


@dataclass(frozen=True)
class Planned:
    """One image to build: its exact local reference and what goes into the build."""

    image: Image
    tag: str
    dirty: bool
    labels: dict[str, str]
    build_args: dict[str, str]
    test_build: bool = False  # built from stub packages to be tested here: never pushed

    @property
    def reference(self) -> str:
        return f"{self.image.name}:{self.tag}"


def plan(order: list[Image], revision: Revision | None = None) -> list[Planned]:
    """Tags, labels and build arguments of every image of `order` (requirements first)."""
    revision = revision or current(order[0].folder if order else None)
    dirty = dirty_images(order)
    planned: dict[str, Planned] = {}
    for image in order:
        is_dirty = image.directory in dirty
        if isinstance(image, Variant):
            planned[image.directory] = _plan_variant(image, planned[image.application.directory], revision, is_dirty)
            continue
        build_args = {
            planned[required].image.build_arg: planned[required].reference
            for required in image.requires
            if required in planned
        }
        planned[image.directory] = Planned(
            image, tag(image.version, revision, is_dirty), is_dirty, labels(image, revision, is_dirty), build_args
        )
    return list(planned.values())


def _plan_variant(variant: Variant, application: Planned, revision: Revision, dirty: bool) -> Planned:
    """<application tag>-<suffix> in the application's repository (dirty when the layer or the
    application is), built from the layer's folder FROM the application's exact tag."""
    return Planned(
        variant,
        f"{tag(variant.version, revision, dirty)}-{variant.suffix}",
        dirty,
        {**labels(variant, revision, dirty), VARIANT_LABEL: f"{variant.base.name} {variant.base.version}"},
        {APP_IMAGE_ARG: application.reference},
    )
