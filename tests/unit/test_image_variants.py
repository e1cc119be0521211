"""Variant layers without an engine: which variants a set of image folders makes and in what order,
their tags, build arguments and labels, the application command they record, the apt source of a
production build and of a test build."""

from __future__ import annotations

import http.server
import os
import shutil
import threading

import pytest
from test_image_pipeline import git

from conftest import FIXTURES
from primage.images import revision, spec, testing, variants

IMAGES = FIXTURES / "images"


def order(selected=None, images=IMAGES) -> list[str]:
    return [image.directory for image in spec.build_order(spec.load_set(images), selected)]


def planned(images=IMAGES) -> dict[str, revision.Planned]:
    return {item.image.directory: item for item in revision.plan(spec.build_order(spec.load_set(images)))}


# --------------------------------------------------------------------------- which variants, in what order


def test_each_image_is_followed_by_its_variants_and_a_layer_is_no_image_of_its_own():
    everything = order()
    assert everything.index("tool") < everything.index("task") < everything.index("task+stubbed")
    assert everything.index("task+stubbed") == everything.index("task") + 1
    assert "wrap" not in everything
    assert "stubbed" not in everything


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        (["task"], ["tool", "task", "task+stubbed", "task+wrap"]),
        (["wrap"], ["tool", "task", "task+wrap"]),
        (["task+stubbed"], ["tool", "task", "task+stubbed"]),
        (["tool"], ["tool"]),
        (["app"], ["tool", "app"]),
    ],
    ids=["an image selects its variants", "a layer its variants", "one variant", "no variant", "an image without"],
)
def test_selection(selected, expected):
    assert order(selected) == expected


def test_without_variants_an_image_is_built_alone_and_a_variant_name_is_unknown():
    """What the backends and the scenarios build: the application they run, not the layers on it
    (a production variant's apt source may not answer where the application runs)."""
    image_set = spec.load_set(IMAGES)
    assert [i.directory for i in spec.build_order(image_set, ["task"], with_variants=False)] == ["tool", "task"]
    assert "task+stubbed" in order()
    assert not [i for i in spec.build_order(image_set, with_variants=False) if "+" in i.directory]
    with pytest.raises(Exception, match=r"no image folder task\+stubbed"):
        spec.build_order(image_set, ["task+stubbed"], with_variants=False)


def test_a_layer_nobody_lists_is_refused_by_name(tmp_path):
    images = tmp_path / "images"
    shutil.copytree(IMAGES / "wrap", images / "wrap")
    with pytest.raises(Exception, match=r"wrap: a variant layer that no image lists in 'variants'"):
        order(["wrap"], images)


# --------------------------------------------------------------------------- tags, arguments, labels


def test_a_variant_is_tagged_after_its_application_and_built_from_its_exact_tag():
    plan = planned()
    task, wrapped = plan["task"], plan["task+wrap"]
    assert wrapped.reference == f"{task.reference}-wrapped"
    assert wrapped.image.name == task.image.name == "primage-test-pipeline/task"
    assert wrapped.build_args == {"APP_IMAGE": task.reference}
    assert wrapped.labels[revision.LABEL_PREFIX + "version"] == "0.4.0"
    assert wrapped.labels[revision.VARIANT_LABEL] == "primage-test-pipeline/wrap 0.3.0"
    assert wrapped.image.folder == IMAGES / "wrap"
    assert wrapped.image.unit == ["/usr/local/bin/wrap", "--self-test"]
    assert not wrapped.test_build


@pytest.fixture
def repository(tmp_path):
    images = tmp_path / "images"
    for name in ("tool", "task", "wrap"):
        shutil.copytree(IMAGES / name, images / name)
    (images / "task" / "image.yml").write_text((IMAGES / "task" / "image.yml").read_text().replace("stubbed, ", ""))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "images")
    return tmp_path


def test_a_changed_layer_makes_its_variants_dirty_and_leaves_the_application_clean(repository):
    clean = planned(repository / "images")
    assert not clean["task+wrap"].dirty
    (repository / "images" / "wrap" / "wrap.sh").write_text("#!/bin/sh\necho changed\n")
    dirty = planned(repository / "images")
    assert not dirty["task"].dirty
    assert dirty["task+wrap"].dirty
    assert dirty["task+wrap"].tag == clean["task"].tag + "-dirty-wrapped"


def test_a_changed_application_makes_its_variants_dirty(repository):
    (repository / "images" / "task" / "task.sh").write_text("#!/bin/sh\necho changed\n")
    dirty = planned(repository / "images")
    assert dirty["task"].dirty
    assert dirty["task+wrap"].tag == dirty["task"].tag + "-wrapped"


# --------------------------------------------------------------------------- the application's command


@pytest.mark.parametrize(
    ("entrypoint", "expected"),
    [
        (["/usr/bin/tini", "--"], []),
        (["/usr/bin/tini", "--", "/entry.sh", "-x"], ["/entry.sh", "-x"]),
        (["tini", "-g", "-p", "SIGKILL", "--", "app"], ["app"]),
        (["tini", "-s", "app", "--flag"], ["app", "--flag"]),
        (["/docker-entrypoint.sh"], ["/docker-entrypoint.sh"]),
        ([], []),
    ],
    ids=["tini alone", "tini and a script", "tini options with values", "tini without --", "no tini", "none"],
)
def test_the_variant_runs_the_application_under_its_own_tini(entrypoint, expected):
    assert variants.without_tini(entrypoint) == expected


def test_the_recorded_command_is_shell_words_the_layer_splits_back():
    config = {
        "Entrypoint": ["/usr/bin/tini", "--"],
        "Cmd": ["python3", "-c", "print('a b')", "$HOME"],
        "User": "1000:1000",
    }
    arguments = variants.application_arguments(config)
    assert arguments == {
        "APP_ENTRYPOINT": "",
        "APP_CMD": "python3 -c 'print('\"'\"'a b'\"'\"')' '$HOME'",
        "APP_USER": "1000:1000",
    }
    assert variants.application_arguments({"Entrypoint": None, "Cmd": None, "User": ""}) == {
        "APP_ENTRYPOINT": "",
        "APP_CMD": "",
        "APP_USER": "",
    }


# --------------------------------------------------------------------------- the apt source


def test_a_production_build_takes_the_dockerfile_defaults_or_the_given_arguments():
    stubbed = planned()["task+stubbed"].image
    assert variants.apt_source(stubbed) == {
        "url": "https://packages.invalid/apt",
        "suite": "stable",
        "components": "main",
        "key_url": "https://packages.invalid/apt/key.asc",
        "key_sha256": "",
    }
    mirror = variants.apt_source(stubbed, {"HELLO_APT_URL": "https://mirror.example/hello"})
    assert mirror["url"] == "https://mirror.example/hello"


@pytest.fixture
def web(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_source_that_answers_anything_is_reachable_and_one_that_does_not_says_why(web):
    assert variants.unreachable({"url": f"{web}/apt", "key_url": f"{web}/no/such/key.asc"}) is None
    why = variants.unreachable({"url": "https://packages.invalid/apt", "key_url": "https://packages.invalid/k"})
    assert why.startswith("its apt source https://packages.invalid/apt cannot be reached from here (")
    assert variants.unreachable({"url": "file:///srv/mirror", "key_url": ""}) is None


def test_a_test_build_is_tagged_labelled_and_pointed_at_the_stub_repository():
    item = planned()["task+stubbed"]
    stub = {"HELLO_APT_URL": "http://172.17.0.1:40000", "HELLO_APT_SUITE": "./"}
    test = variants.as_test_build(item, stub)
    assert test.tag == item.tag + "-test"
    assert test.test_build
    assert test.labels[variants.TEST_BUILD_LABEL] == "stub packages (fixture-hello); never push"
    assert test.build_args == {**item.build_args, **stub}
    assert item.image.base.layer.has_test_build
    assert not planned()["task+wrap"].image.base.layer.has_test_build


def test_the_tests_from_outside_of_a_variant_are_its_layers_and_its_applications():
    tests = FIXTURES / "image-tests"
    folder, targets = testing.outside_tests(planned()["task+wrap"], tests)
    assert folder == tests / "wrap"
    assert targets == [tests / "wrap" / "test_wrap.py", tests / "wrap" / "task"]
    assert testing.outside_tests(planned()["app"], tests) == (tests / "app", [tests / "app"])
    assert testing.image_variable("task+wrap") == "PRIMAGE_IMAGE_TASK_WRAP"


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("NOPE=1", "--build-arg NOPE: no selected Dockerfile declares ARG NOPE (declared: "),
        ("APP_IMAGE=x:1", "--build-arg APP_IMAGE: the pipeline sets it"),
        ("TOOL_IMAGE=x:1", "--build-arg TOOL_IMAGE: the pipeline sets it"),
        ("HELLO_APT_URL", "--build-arg HELLO_APT_URL: expected NAME=VALUE"),
    ],
    ids=["undeclared", "application tag", "requirement tag", "no value"],
)
def test_build_arguments_are_refused_before_anything_is_built(primage, argument, message):
    run = primage("images", "build", "--images-dir", IMAGES, "task", "--build-arg", argument)
    assert run.code == 2
    assert message in run.err
    assert "building" not in run.err


def test_the_stub_repository_is_kept_while_its_packages_and_key_are_current():
    layer = spec.load_set(IMAGES).images["stubbed"]
    out = variants._stub_repository(layer)
    key = (out / "archive-key.asc").read_bytes()
    assert variants._stub_repository(layer) == out
    assert (out / "archive-key.asc").read_bytes() == key, "the same packages keep the same repository"
    stamp = out / ".stub-packages.sha256"
    stamp.write_text("another set of packages")
    assert (variants._stub_repository(layer) / "archive-key.asc").read_bytes() != key
    key = (out / "archive-key.asc").read_bytes()
    old = stamp.stat().st_mtime - variants.KEY_REUSE_SECONDS - 60
    os.utime(stamp, (old, old))
    assert (variants._stub_repository(layer) / "archive-key.asc").read_bytes() != key, "a key near expiry is renewed"
    assert (out / "Packages").read_text().startswith("Package: fixture-hello\nVersion: 1.0.0\n")
