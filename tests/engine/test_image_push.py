"""`primage images push` against a real registry with TLS and htpasswd that the test starts on
loopback (Debian's docker-registry): refused until its CA is trusted, refused with a wrong
password with nothing pushed, and pushed, verified by digest and pulled back with the right one;
the password never reaches ~/.docker/config.json, the output or the logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pipeline_support import IMAGES, built_fixtures, docker_api, fixture_plan, primage_command, remove_image
from tls_registry import BINARY, USER, TlsRegistry

from conftest import ROOT
from primage import paths
from primage.images import revision, spec

pytestmark = pytest.mark.engine
__all__ = ["built_fixtures", "docker_api"]  # session fixtures, imported to be found


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: scripts/setup.sh installs Debian's docker-registry")
    started = TlsRegistry(tmp_path_factory.mktemp("registry"))
    started.start()
    yield started
    started.stop()


def secret_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / f"password-{mode:o}"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def push(registry, *extra, stdin=None):
    return primage_command(
        "images", "push", "--images-dir", IMAGES, "--registry", registry.host, "--allow-dirty", *extra, stdin=stdin
    )


def docker_config() -> bytes | None:
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    return config.read_bytes() if config.exists() else None


def test_an_untrusted_registry_gets_no_credentials(registry, built_fixtures, tmp_path):
    run = push(registry, "tool", "--username", USER, "--password-file", secret_file(tmp_path, registry.password))
    assert run.code == 1
    assert f"the certificate of https://{registry.host}/v2/ is not trusted" in run.err
    assert f"/etc/docker/certs.d/{registry.host}/ca.crt" in run.err
    assert registry.repositories() == []


def test_a_wrong_password_is_refused_and_nothing_is_pushed(registry, built_fixtures, tmp_path):
    with registry.trust():
        run = push(registry, "tool", "app", "--username", USER, "--password-file", secret_file(tmp_path, "not-it"))
    assert run.code == 1
    assert (
        f"the registry {registry.host} refused the credentials of user '{USER}' (wrong username or password); "
        "nothing was pushed"
    ) in run.err
    assert "pushed" not in run.out
    assert registry.repositories() == []


def test_a_password_file_others_can_read_is_refused(registry, built_fixtures, tmp_path):
    readable = secret_file(tmp_path, registry.password, 0o644)
    with registry.trust():
        run = push(registry, "tool", "--username", USER, "--password-file", readable)
    assert run.code == 2
    assert "lets others read it" in run.err
    assert registry.password not in run.err
    assert registry.repositories() == []


def test_pushed_images_are_served_by_digest_and_pull_back_identical(registry, built_fixtures, docker_api):
    before = docker_config()
    plan = fixture_plan()
    with registry.trust():
        run = push(
            registry, "tool", "app", "--username", USER, "--password-file", "-", "--json", stdin=registry.password
        )
        assert run.code == 0, run.err
        results = run.results()
        auth = {"username": USER, "password": registry.password}
        for name in ("tool", "app"):
            result, item = results[name], plan[name]
            assert result["status"] == "pushed"
            assert result["remote"] == f"{registry.host}/{item.image.name}:{item.tag}"
            assert registry.manifest_digest(item.image.name, item.tag) == result["digest"]
            remote = f"{registry.host}/{item.image.name}"
            docker_api.pull(remote, tag=item.tag, auth_config=auth)
            pulled = docker_api.inspect_image(result["remote"])
            docker_api.remove_image(result["remote"], noprune=True)
            assert pulled["Id"] == docker_api.inspect_image(item.reference)["Id"]
            assert f"{remote}@{result['digest']}" in pulled["RepoDigests"]
    assert sorted(registry.repositories()) == sorted(plan[name].image.name for name in ("tool", "app"))
    assert docker_config() == before, "the push left credentials in the Docker config"
    logs = "".join(p.read_text(errors="replace") for p in (paths.state_dir() / "images").glob("*.log"))
    assert registry.password not in run.out + run.err + logs


def test_a_push_the_registry_refuses_midway_is_not_reported_pushed(built_fixtures, tmp_path):
    """The credentials are right but the registry refuses the uploads (read-only mode)."""
    refusing = TlsRegistry(tmp_path, read_only=True)
    refusing.start()
    try:
        with refusing.trust():
            run = push(
                refusing, "tool", "--username", USER, "--password-file", secret_file(tmp_path, refusing.password)
            )
            run_json = push(
                refusing,
                "tool",
                "--username",
                USER,
                "--password-file",
                secret_file(tmp_path, refusing.password),
                "--json",
            )
    finally:
        refusing.stop()
    assert run.code == 1
    assert "tool: FAILED:" in run.err
    assert run.out.rstrip().endswith("1 images, 1 failed, 0 not run")
    result = run_json.results()["tool"]
    assert (result["status"], result["digest"]) == ("FAIL", "")
    assert result["reason"]


def test_the_push_leaves_no_registry_tag_behind(registry, built_fixtures, docker_api):
    tags = [tag for image in docker_api.images() for tag in image.get("RepoTags") or []]
    assert not [tag for tag in tags if tag.startswith(registry.host)]


def test_variants_push_with_their_image_and_test_builds_never(registry, built_fixtures, docker_api, tmp_path):
    plan = fixture_plan()
    password = secret_file(tmp_path, registry.password)
    with registry.trust():
        run = push(registry, "task", "--username", USER, "--password-file", password, "--json")
    assert run.code == 0, run.err
    results = run.results()
    for name in ("task", "task+wrap"):
        assert results[name]["status"] == "pushed"
        assert registry.manifest_digest(plan[name].image.name, plan[name].tag) == results[name]["digest"]
    # Its apt source never answers: no production build to push, and no test build instead.
    assert results["task+stubbed"]["status"] == "not run"
    assert results["task+stubbed"]["reason"].startswith("not built here: its apt source https://packages.invalid")
    assert not [t for t in registry.tags(plan["task"].image.name) if t.endswith("-test")]
    # A test build tagged by hand as the production variant is still refused, before any push.
    tested = primage_command(
        "images", "test", "--images-dir", IMAGES, "--tests-dir", tmp_path, "task+stubbed", "--json"
    )
    test_build = tested.results()["task+stubbed"]["reference"]
    docker_api.tag(test_build, plan["task+stubbed"].image.name, plan["task+stubbed"].tag)
    try:
        with registry.trust():
            refused = push(registry, "task", "--username", USER, "--password-file", password)
    finally:
        remove_image(docker_api, plan["task+stubbed"].reference)
        remove_image(docker_api, test_build)
    assert refused.code == 1
    assert f"test builds (stub packages) are never pushed: {plan['task+stubbed'].reference}" in refused.err


CONTAINERS = spec.image_folders(ROOT / "containers")


@pytest.mark.parametrize("folder", CONTAINERS, ids=lambda folder: folder.name)
def test_every_repository_image_pushes(registry, folder, tmp_path):
    """The images of containers/ and their variants, built and tested by the steps before (tox env
    `images`); a variant whose production build could not reach its apt source here is not run."""
    password = secret_file(tmp_path, registry.password)
    with registry.trust():
        run = primage_command(
            "images", "push", folder.name, "--registry", registry.host, "--username", USER,
            "--password-file", password, "--allow-dirty", "--json",
        )  # fmt: skip
    assert run.code == 0, run.err
    plan = {p.image.directory: p for p in revision.plan(spec.build_order(spec.load_set(), [folder.name]))}
    results = run.results()
    assert results, "something of the folder was pushed or said why not"
    for name, result in results.items():
        item = plan[name]
        if result["status"] == "not run":
            assert isinstance(item.image, spec.Variant), f"{name}: only a variant may be not run: {result}"
            assert result["reason"].startswith("not built here: its apt source ")
            continue
        assert registry.manifest_digest(item.image.name, item.tag) == result["digest"]
