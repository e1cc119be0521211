"""The image pipeline without an engine: image.yml and Dockerfile validation, build order, tags
and labels from git, registry URLs and password files.

Broken image sets live in tests/fixtures/broken/images/<what_is_wrong>/, one folder of image
folders each; the file at fault carries `# expect-check:`, `# expect:`, and `# expect-line:` or
`# expect-file:` (when the problem is in a file that does not exist) in header comments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_broken_fixtures import header, problems_of

from conftest import FIXTURES, ROOT
from primage import checks, paths, pieces, release
from primage.checks.registry import checks_for
from primage.errors import PrimageError, UsageError
from primage.images import push, revision, spec

BROKEN_IMAGES = FIXTURES / "broken" / "images"
BROKEN_FILES = sorted(
    path for path in BROKEN_IMAGES.rglob("*") if path.is_file() and header(path, "expect") is not None
)
IMAGES = FIXTURES / "images"


def test_every_broken_image_set_has_one_expectation():
    sets = sorted(folder for folder in BROKEN_IMAGES.iterdir() if folder.is_dir())
    assert len(sets) >= 12
    assert sorted(path.relative_to(BROKEN_IMAGES).parts[0] for path in BROKEN_FILES) == [s.name for s in sets]


@pytest.mark.parametrize("fixture", BROKEN_FILES, ids=lambda p: p.relative_to(BROKEN_IMAGES).parts[0])
def test_check_reports_the_image_problem(primage, fixture):
    target = fixture.parent / spec.IMAGE_FILE
    run = primage("check", target if target.exists() else fixture.parent / spec.DOCKERFILE, "--json")
    assert run.code == 1, run.out
    found = problems_of(run, header(fixture, "expect-check"))
    message = header(fixture, "expect")
    assert any(p["message"] == message for p in found), f"{message!r} not in {found}"
    problem = next(p for p in found if p["message"] == message)
    faulty = fixture.parent / header(fixture, "expect-file") if header(fixture, "expect-file") else fixture
    assert problem["file"] == str(faulty.relative_to(ROOT))
    assert problem["line"] == (int(header(fixture, "expect-line")) if header(fixture, "expect-line") else None)


@pytest.mark.parametrize("fixture", BROKEN_FILES, ids=lambda p: p.relative_to(BROKEN_IMAGES).parts[0])
def test_build_refuses_the_set_before_touching_the_engine(primage, fixture):
    image_set = fixture.relative_to(BROKEN_IMAGES).parts[0]
    run = primage("images", "build", "--images-dir", BROKEN_IMAGES / image_set)
    assert run.code == 1
    assert "nothing was built" in run.err
    assert header(fixture, "expect") in run.err
    assert "Traceback" not in run.err


def test_the_fixture_images_are_valid_and_ordered_by_requires():
    image_set = spec.load_set(IMAGES)
    assert image_set.all_problems() == []
    order = [image.directory for image in spec.build_order(image_set)]
    assert sorted(order) == [
        "app", "broken-build", "failing-unit", "needs-broken", "task", "task+stubbed", "task+wrap", "tool"
    ]  # fmt: skip
    assert order.index("tool") < order.index("app")
    assert order.index("task") < order.index("task+stubbed") < order.index("task+wrap")
    assert order.index("broken-build") < order.index("needs-broken")


def test_building_one_image_builds_what_it_requires_first():
    image_set = spec.load_set(IMAGES)
    assert [image.directory for image in spec.build_order(image_set, ["app"])] == ["tool", "app"]
    assert [image.directory for image in spec.build_order(image_set, ["tool"])] == ["tool"]


def test_an_unknown_image_is_refused_with_the_known_ones():
    with pytest.raises(
        PrimageError, match=r"no image folder nosuch in tests/fixtures/images \(images: app, broken-build"
    ):
        spec.build_order(spec.load_set(IMAGES), ["nosuch"])


@pytest.mark.parametrize("piece", [p for p in pieces.discover() if p.kind == "image"], ids=lambda p: p.name)
def test_every_image_of_the_repository_passes_its_checks(piece):
    report = checks.run_checks(piece, checks_for(piece.kind))
    assert [f"{r.check}: {p}" for r in report.results for p in r.problems] == []
    assert [r.status for r in report.results] == [checks.PASS, checks.PASS]


def test_the_repository_images_are_the_image_pieces(primage):
    """containers/base declares base images and is no image folder; every other folder is one."""
    listed = {p["name"] for p in primage("list", "--kind", "image", "--json").json()}
    assert listed == {folder.name for folder in spec.image_folders(ROOT / "containers")}
    assert "base" not in listed


# --------------------------------------------------------------------------- Dockerfile parsing


def test_instructions_keep_their_first_line_through_continuations_and_comments():
    text = (
        "# syntax comment\n"
        "ARG TOOL_IMAGE=primage/tool:0.1.0\n"
        "\n"
        "FROM --platform=linux/amd64 ${TOOL_IMAGE} AS build\n"
        "RUN apt-get update && \\\n"
        "    # a comment inside the continuation\n"
        "    apt-get install -y curl\n"
        "from build\n"
    )
    instructions = spec.parse_dockerfile(text)
    assert [(i.keyword, i.line) for i in instructions] == [("ARG", 2), ("FROM", 4), ("RUN", 5), ("FROM", 8)]
    assert instructions[2].arguments == "apt-get update && apt-get install -y curl"
    references = spec.base_references(instructions)
    assert references[0].variable == "TOOL_IMAGE"
    assert references[0].resolved == "primage/tool:0.1.0"
    assert references[0].stage == "build"
    assert references[1].written == "build"


def test_the_escape_directive_changes_the_continuation_character():
    instructions = spec.parse_dockerfile("# escape=`\nFROM debian:trixie-slim\nRUN echo a `\n  b\n")
    assert [(i.keyword, i.arguments, i.line) for i in instructions][1] == ("RUN", "echo a b", 3)


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("debian:trixie-slim", True),
        ("registry.example:5000/primage/tool:0.1.0", True),
        ("debian@sha256:" + "a" * 64, True),
        ("scratch", True),
        ("debian", False),
        ("debian:latest", False),
        ("registry.example:5000/primage/tool", False),
    ],
)
def test_pins(reference, pinned):
    assert (spec.pin_problem(reference) is None) == pinned


def test_the_build_argument_of_a_folder_name():
    assert spec.build_arg_name("imaging") == "IMAGING_IMAGE"
    assert spec.build_arg_name("broken-build") == "BROKEN_BUILD_IMAGE"


# --------------------------------------------------------------------------- tags and labels


COMMITTED = "2026-01-02T03:04:05+01:00"


def git(folder: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"]
    env = {**os.environ, "GIT_COMMITTER_DATE": COMMITTED, "GIT_AUTHOR_DATE": COMMITTED}
    return subprocess.run(
        ["git", *identity, *arguments], cwd=folder, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repository(tmp_path):
    """A git repository holding a copy of the tool and app fixture images, committed."""
    images = tmp_path / "images"
    for name in ("tool", "app"):
        shutil.copytree(IMAGES / name, images / name)
    (tmp_path / "README").write_text("elsewhere\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "images")
    return tmp_path


def planned_by_folder(repository: Path) -> dict[str, revision.Planned]:
    order = spec.build_order(spec.load_set(repository / "images"))
    return {item.image.directory: item for item in revision.plan(order)}


def test_a_clean_tree_tags_version_and_short_revision(repository):
    short = git(repository, "rev-parse", "--short=7", "HEAD")
    planned = planned_by_folder(repository)
    assert planned["tool"].tag == f"0.1.0-g{short}"
    assert planned["app"].reference == f"primage-test-pipeline/app:0.2.0-g{short}"
    assert not planned["app"].dirty
    assert planned["app"].build_args == {"TOOL_IMAGE": f"primage-test-pipeline/tool:0.1.0-g{short}"}


def test_clean_labels_name_the_commit_and_its_time(repository):
    labels = planned_by_folder(repository)["app"].labels
    assert labels == {
        "org.opencontainers.image.source": release.current().repository,
        "org.opencontainers.image.revision": git(repository, "rev-parse", "HEAD"),
        "org.opencontainers.image.version": "0.2.0",
        "org.opencontainers.image.created": "2026-01-02T02:04:05Z",
    }


def test_a_change_in_a_folder_makes_it_and_what_builds_on_it_dirty(repository):
    (repository / "images" / "tool" / "Dockerfile").write_text("FROM debian:trixie-slim\nRUN echo changed\n")
    planned = planned_by_folder(repository)
    assert planned["tool"].tag.endswith("-dirty")
    assert planned["app"].dirty, "app is built FROM the changed tool image"
    assert planned["app"].build_args["TOOL_IMAGE"].endswith("-dirty")
    assert planned["app"].labels["org.opencontainers.image.revision"].endswith("-dirty")
    assert planned["app"].labels["org.opencontainers.image.created"] != "2026-01-02T02:04:05Z"


def test_an_untracked_file_makes_only_its_image_dirty(repository):
    (repository / "images" / "app" / "notes.txt").write_text("new\n")
    planned = planned_by_folder(repository)
    assert planned["app"].dirty
    assert not planned["tool"].dirty


def test_an_ignored_file_the_build_context_sends_makes_the_image_dirty(repository):
    """The tag names what was built: an ignored file (git) still goes into the image unless
    .dockerignore keeps it out of the build context."""
    (repository / ".gitignore").write_text("__pycache__/\n")
    git(repository, "add", ".gitignore")
    git(repository, "commit", "-q", "-m", "ignore caches")
    cache = repository / "images" / "app" / "__pycache__"
    cache.mkdir()
    (cache / "hello.cpython-313.pyc").write_bytes(b"\0")
    assert planned_by_folder(repository)["app"].dirty
    (repository / "images" / "app" / ".dockerignore").write_text("# local leftovers\n**/__pycache__\n")
    git(repository, "add", "images/app/.dockerignore")
    git(repository, "commit", "-q", "-m", "keep caches out of the context")
    assert not planned_by_folder(repository)["app"].dirty


def test_a_staged_or_deleted_file_makes_the_image_dirty(repository):
    git(repository, "rm", "-q", "images/app/hello.sh")
    assert planned_by_folder(repository)["app"].dirty
    git(repository, "reset", "-q", "--hard")
    (repository / "images" / "tool" / "Dockerfile").write_text("FROM debian:trixie-slim\n")
    git(repository, "add", "images/tool/Dockerfile")
    assert planned_by_folder(repository)["tool"].dirty


def test_changes_outside_the_image_folders_leave_the_tags_clean(repository):
    (repository / "README").write_text("changed\n")
    (repository / "images" / "other.txt").write_text("beside the folders\n")
    assert not any(item.dirty for item in planned_by_folder(repository).values())


def test_a_folder_outside_git_is_refused_with_the_reason(tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(IMAGES / "tool", folder / "tool")
    env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    try:
        with pytest.raises(PrimageError, match="build from a git checkout"):
            revision.plan(spec.build_order(spec.load_set(folder)))
    finally:
        if env_ceiling is None:
            del os.environ["GIT_CEILING_DIRECTORIES"]
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling


# --------------------------------------------------------------------------- push arguments


@pytest.mark.parametrize(
    ("url", "host", "prefix"),
    [
        ("registry.example.eu:5000", "registry.example.eu:5000", ""),
        ("https://registry.example.eu:5000/", "registry.example.eu:5000", ""),
        (
            "registry.gitlab.com/primageproject/primage-platform",
            "registry.gitlab.com",
            "primageproject/primage-platform",
        ),
        ("127.0.0.1:5443", "127.0.0.1:5443", ""),
    ],
)
def test_registry_urls(url, host, prefix):
    assert push.parse_registry(url) == push.Registry(host, prefix)


@pytest.mark.parametrize("url", ["http://registry.example:5000", "", "registry example", "host:5000/Upper/Case"])
def test_bad_registry_urls_are_refused(url):
    with pytest.raises(UsageError, match="--registry"):
        push.parse_registry(url)


def test_a_password_file_others_can_read_is_refused(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")
    secret.chmod(0o644)
    with pytest.raises(UsageError, match=r"mode 0644 lets others read it; run `chmod 600") as refused:
        push.read_password(str(secret))
    assert "s3cret-value" not in str(refused.value)
    secret.chmod(0o600)
    assert push.read_password(str(secret)) == "s3cret-value"


def test_an_empty_password_is_refused(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("\n")
    secret.chmod(0o600)
    with pytest.raises(UsageError, match="empty"):
        push.read_password(str(secret))


def test_the_password_comes_from_standard_input(monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert push.read_password("-") == "from-stdin"


def test_push_wants_username_and_password_file_together(primage):
    run = primage("images", "push", "--registry", "registry.example:5000", "--username", "ci")
    assert run.code == 2
    assert "give --username and --password-file together" in run.err


def test_images_built_from_uncommitted_changes_are_not_pushed(primage, repository):
    (repository / "images" / "tool" / "notes.txt").write_text("uncommitted\n")
    run = primage("images", "push", "--images-dir", repository / "images", "--registry", "registry.example:5000")
    assert run.code == 2
    assert "built from uncommitted changes: primage-test-pipeline/tool:0.1.0-g" in run.err
    assert "-dirty, primage-test-pipeline/app:0.2.0-g" in run.err
    assert "commit first (or --allow-dirty for a test registry)" in run.err


def test_the_images_dir_defaults_to_containers():
    assert spec.load_set().images_dir == paths.containers_dir()


# --------------------------------------------------------------------------- a new image folder


def test_a_new_image_folder_is_listed_checked_and_documented(primage, checkout):
    shutil.copytree(IMAGES / "tool", checkout / "containers" / "hello")
    listed = {p["name"]: p for p in primage("list", "--kind", "image", "--json").json()}
    assert listed["hello"]["path"] == "containers/hello/image.yml"
    assert listed["hello"]["detail"] == "primage-test-pipeline/tool 0.1.0"
    run = primage("check", "hello", "--json")
    assert run.code == 0, run.out
    assert [r["status"] for r in run.json()["pieces"][0]["results"]] == ["pass", "pass"]
    assert primage("docs", "--check").code == 1
    assert primage("docs").code == 0
    readme = (checkout / "README.md").read_text()
    assert "| `containers/hello/` | `primage-test-pipeline/tool` | 0.1.0 |  | Fixture base image" in readme
    assert primage("docs", "--check").code == 0
