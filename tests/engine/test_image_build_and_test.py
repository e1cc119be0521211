"""`primage images build` and `primage images test` on the fixture images, on the real engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_support import (
    IMAGE_TESTS,
    IMAGES,
    built_fixtures,
    docker_api,
    fixture_plan,
    primage_command,
    remove_image,
)

from conftest import ROOT
from primage.images import spec

pytestmark = pytest.mark.engine
__all__ = ["built_fixtures", "docker_api"]  # session fixtures, imported to be found


def test_build_builds_what_it_can_and_names_the_failing_line(built_fixtures):
    assert built_fixtures.code == 1, built_fixtures.err
    results = built_fixtures.results()
    assert {name: r["status"] for name, r in results.items()} == {
        "tool": "built",
        "app": "built",
        "task": "built",
        "task+stubbed": "not run",
        "task+wrap": "built",
        "failing-unit": "built",
        "broken-build": "FAIL",
        "needs-broken": "not run",
    }
    assert results["task+stubbed"]["reason"].startswith(
        "its apt source https://packages.invalid/apt cannot be reached from here ("
    )
    assert results["task+wrap"]["reference"] == results["task"]["reference"] + "-wrapped"
    broken = results["broken-build"]
    assert broken["problem"]["file"] == "tests/fixtures/images/broken-build/Dockerfile"
    assert broken["problem"]["line"] == 4
    assert broken["problem"]["message"].startswith("step 3/")
    assert broken["problem"]["message"].endswith("failed: exit code 7")
    assert broken["tail"] == ["compiling module 1 of 2", "error: cannot find /opt/missing/header.h"]
    assert results["needs-broken"]["reason"] == "its requirement broken-build did not build"


def test_build_shows_progress_per_image_and_step(built_fixtures):
    err = built_fixtures.err
    assert "base image debian:trixie-slim: up to date" in err or "base image debian:trixie-slim: built" in err
    assert "app: step 2/" in err
    assert ": FROM ${TOOL_IMAGE}" in err
    assert "broken-build:   | error: cannot find /opt/missing/header.h" in err


def test_the_table_ends_the_build(built_fixtures):
    table = primage_command("images", "build", "--images-dir", IMAGES, "tool")
    assert table.code == 0, table.err
    header, _rule, row = table.out.splitlines()[:3]
    assert header.split() == ["image", "tag", "size", "seconds", "result"]
    assert row.split()[:2] == ["tool", fixture_plan()["tool"].tag]
    assert "MB" in row
    assert table.out.rstrip().endswith("1 images, 0 failed, 0 not run")


def test_built_images_carry_tag_labels_and_their_requirement(built_fixtures, docker_api):
    plan = fixture_plan()
    app = docker_api.inspect_image(plan["app"].reference)
    tool = docker_api.inspect_image(plan["tool"].reference)
    assert {k: v for k, v in app["Config"]["Labels"].items() if k.startswith("org.opencontainers")} == plan[
        "app"
    ].labels
    assert plan["app"].tag.startswith("0.2.0-g")
    assert "latest" not in " ".join(app["RepoTags"] + tool["RepoTags"])
    # Built FROM the exact tool image of this revision (--build-arg TOOL_IMAGE=<its tag>).
    assert app["RootFS"]["Layers"][: len(tool["RootFS"]["Layers"])] == tool["RootFS"]["Layers"]


def test_a_warm_build_comes_from_the_layer_cache(built_fixtures):
    warm = primage_command("images", "build", "--images-dir", IMAGES, "app", "--json")
    assert warm.code == 0, warm.err
    for name in ("tool", "app"):
        result = warm.results()[name]
        instructions = spec.load_set(IMAGES).images[name].instructions()
        work = [i for i in instructions if i.keyword in ("RUN", "COPY", "ADD", "ENTRYPOINT")]
        assert result["cached_steps"] >= len(work), result
        if not fixture_plan()[name].dirty:  # same commit, same labels: the very same image
            assert result["executed_steps"] == 0
            assert result["image_id"] == built_fixtures.results()[name]["image_id"]


def image_repository(folder, name: str, dockerfile: str, unit: str = "") -> Path:
    """A git repository with one committed image folder `images/<name>`; returns the images dir."""
    images = folder / "images"
    (images / name).mkdir(parents=True)
    (images / name / "image.yml").write_text(
        f"---\nname: primage-test-pipeline/{name}\nversion: 0.1.0\ndescription: A test image.\n{unit}"
    )
    (images / name / "Dockerfile").write_text(dockerfile)
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=folder, check=True)
    return images


def test_a_dockerfile_the_engine_cannot_parse_names_its_line(tmp_path, docker_api):
    images = image_repository(tmp_path, "typo", "FROM debian:trixie-slim\nRUNN echo typo\n")
    run = primage_command("images", "build", "--images-dir", images, "--json")
    assert run.code == 1
    problem = run.results()["typo"]["problem"]
    assert problem["line"] == 2
    assert "unknown instruction: RUNN" in problem["message"]
    assert problem["file"].endswith("images/typo/Dockerfile")
    remove_image(docker_api, fixture_plan(images)["typo"].reference)


def test_a_unit_command_missing_from_the_image_fails_with_the_reason(tmp_path, docker_api):
    images = image_repository(
        tmp_path, "nocmd", "FROM debian:trixie-slim\nRUN true\n", "test:\n  unit: [/no/such/command, --all]\n"
    )
    assert primage_command("images", "build", "--images-dir", images).code == 0
    try:
        run = primage_command("images", "test", "--images-dir", images, "--tests-dir", tmp_path, "--json")
    finally:
        remove_image(docker_api, fixture_plan(images)["nocmd"].reference)
    assert run.code == 1
    unit = run.results()["nocmd"]["unit"]
    assert unit["status"] == "FAIL"
    assert unit["reason"].startswith("`/no/such/command --all` could not start:")
    assert "no such file or directory" in unit["reason"]
    assert not docker_api.containers(all=True, filters={"label": "org.primage.test=nocmd"})


def test_test_runs_unit_tests_inside_and_tests_from_outside(built_fixtures, docker_api):
    run = primage_command("images", "test", "--images-dir", IMAGES, "--tests-dir", IMAGE_TESTS, "--json")
    assert run.code == 1, run.err
    results = run.results()
    assert (results["tool"]["unit"]["status"], results["tool"]["outside"]["status"]) == ("pass", "not run")
    assert results["tool"]["outside"]["reason"] == (
        "no tests/fixtures/image-tests/tool/ folder of tests from outside the image"
    )
    assert results["tool"]["result"] == "not run"
    assert (results["app"]["unit"]["status"], results["app"]["outside"]["status"]) == ("pass", "pass")
    assert results["failing-unit"]["unit"]["status"] == "FAIL"
    assert "exited 3" in results["failing-unit"]["unit"]["reason"]
    assert "    | test_volume: expected 2 mL, got 3 mL" in run.err  # the failing test's output is shown
    assert "    | app: 1 passed" in run.err
    assert "1 passed" in run.err  # pytest of tests/fixtures/image-tests/app
    for name in ("broken-build", "needs-broken"):
        assert results[name]["result"] == "FAIL"
        assert f"run `primage images build {name}` first" in results[name]["unit"]["reason"]
    # A layer without an apt source: its variant as built, with its layer's and its application's tests.
    assert (results["task+wrap"]["unit"]["status"], results["task+wrap"]["outside"]["status"]) == ("pass", "pass")
    assert "pytest tests/fixtures/image-tests/wrap/test_wrap.py tests/fixtures/image-tests/wrap/task" in run.err
    # A layer with one: its test build, from the stub packages served to the build.
    stubbed = results["task+stubbed"]
    assert stubbed["reference"] == fixture_plan()["task+stubbed"].reference + "-test"
    assert stubbed["unit"]["status"] == "pass"
    assert "    | fixture-hello 1.0.0 (stub): 1 passed" in run.err
    assert (
        stubbed["outside"]["reason"] == "no tests/fixtures/image-tests/stubbed/ folder of tests from outside the image"
    )
    labels = docker_api.inspect_image(stubbed["reference"])["Config"]["Labels"]
    assert labels["org.primage.test-build"] == "stub packages (fixture-hello); never push"
    remove_image(docker_api, stubbed["reference"])
    leftovers = docker_api.containers(all=True, filters={"name": "primage-test-"})
    assert not [c for c in leftovers if c["Labels"].get("org.primage.test") in results]


def test_tests_from_outside_fail_without_the_pipeline(tmp_path):
    """The contract: a test run without PRIMAGE_TEST_IMAGE fails, never skips."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(IMAGE_TESTS / "app")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert completed.returncode == 1
    assert "PRIMAGE_TEST_IMAGE is not set: run `primage images build" in completed.stdout


def test_build_steps_trust_the_extra_ca_bundle_of_the_base_image(tmp_path, docker_api):
    """Build-time TLS interception: an HTTPS download in a RUN step, as pip does, on the
    bootstrapped base image (current: its recipe includes this machine's extra CA bundle)."""
    from primage import engine

    download = "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=60).read(64)"
    images = image_repository(tmp_path, "https", f'FROM debian:trixie-slim\nRUN python3 -c "{download}"\n')
    run = primage_command("images", "build", "--images-dir", images, "--json")
    remove_image(docker_api, fixture_plan(images)["https"].reference)
    assert run.code == 0, run.err
    base = engine.find_base_image("debian:trixie-slim")
    assert engine.image_labels(base.tag)[engine.RECIPE_LABEL] == base.recipe_hash(engine.extra_ca_certificates())


def test_a_missing_base_image_is_bootstrapped_before_the_build(tmp_path, monkeypatch, docker_api):
    """A checkout declaring a base image the engine lacks: build bootstraps it first (debootstrap)."""
    import secrets
    import shutil

    checkout = tmp_path / "repo"
    for name in ("tosca", "radl", "ansible"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("molecule"))
    shutil.copy(ROOT / "pyproject.toml", checkout)
    base_tag = f"primage-test-pipeline/base:t{secrets.token_hex(4)}"
    (checkout / "containers" / "base").mkdir(parents=True)
    (checkout / "containers" / "base" / "images.yml").write_text(
        "---\nimages:\n"
        f"  - tag: {base_tag}\n    suite: trixie\n    mirror: http://deb.debian.org/debian\n"
        "    keyring: /usr/share/keyrings/debian-archive-keyring.gpg\n    purpose: application\n"
        "    default: false\n    packages: [ca-certificates]\n"
    )
    image = checkout / "containers" / "onbase"
    image.mkdir()
    (image / "image.yml").write_text("---\nname: primage-test-pipeline/onbase\nversion: 0.1.0\ndescription: On it.\n")
    (image / "Dockerfile").write_text(f"FROM {base_tag}\nRUN test -s /etc/ssl/certs/ca-certificates.crt\n")
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=checkout, check=True)
    monkeypatch.setenv("PRIMAGE_ROOT", str(checkout))
    monkeypatch.setenv("PRIMAGE_CACHE", str(tmp_path / "cache"))
    try:
        run = primage_command("images", "build", "--json")
    finally:
        for built in docker_api.images(name="primage-test-pipeline/onbase"):
            remove_image(docker_api, built["Id"])
        remove_image(docker_api, base_tag)
    assert run.code == 0, run.err
    assert f"base image {base_tag}: built" in run.err
    assert run.results()["onbase"]["status"] == "built"
