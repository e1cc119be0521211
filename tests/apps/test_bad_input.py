"""Bad input to the application commands: a clear message naming what is wrong, a non-zero exit,
never a traceback. Each case runs `primage` as a user would, in a process of its own."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from apps_support import images, make_space, primage, sample, session_cache

pytestmark = pytest.mark.engine
__all__ = ["images", "make_space", "sample", "session_cache"]  # fixtures, imported to be found


@pytest.fixture
def space(make_space):
    folder, _cases = make_space(2)
    return folder


def submit(space, *options, name="pancreas", files="inputs/*"):
    return primage("htc", "submit", name, "--space", space, "--files", files, *options)


def refused(done, code: int) -> str:
    assert done.code == code, (done.code, done.err)
    assert "Traceback" not in done.err
    assert "internal error" not in done.err
    assert done.out == ""
    return done.err.strip()


def test_no_file_matches(space):
    message = refused(submit(space, files="scans/*.nii.gz"), 1)
    assert message == (
        f"primage: {space}: no file matches --files 'scans/*.nii.gz' in the space folder (it holds inputs/; the "
        "pattern is relative to it, e.g. --files 'inputs/*')"
    )


def test_the_space_folder_is_missing(tmp_path):
    message = refused(submit(tmp_path / "nowhere"), 1)
    assert message == (
        f"primage: {tmp_path / 'nowhere'}: the space folder does not exist (give --space a folder, e.g. one "
        "mounted with oneclient)"
    )


@pytest.fixture
def shared_tmp():
    """A folder every user may reach (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="primage-apps-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_space_folder_is_unreadable(space, shared_tmp):
    locked = shared_tmp / "space"
    shutil.copytree(space, locked)
    locked.chmod(0o700)  # root's; the command runs as nobody
    cache = shared_tmp / "cache-of-nobody"
    cache.mkdir()
    cache.chmod(0o777)
    done = primage("htc", "submit", "pancreas", "--space", locked, "--files", "inputs/*", "--image",
                   "primage/segmentation:0.1.0-g0000000", user=65534, env={"PRIMAGE_CACHE": str(cache)})  # fmt: skip
    assert refused(done, 1) == f"primage: {locked}: the space folder cannot be read (permission denied)"
    hidden = primage("htc", "submit", "pancreas", "--space", locked / "inputs", "--files", "*", "--image",
                     "primage/segmentation:0.1.0-g0000000", user=65534, env={"PRIMAGE_CACHE": str(cache)})  # fmt: skip
    assert refused(hidden, 1) == (
        f"primage: {locked / 'inputs'}: the space folder cannot be reached (permission denied on a folder above it)"
    )


def test_an_unknown_image(space):
    message = refused(submit(space, "--image", "primage/nothing:1.0"), 1)
    assert message == (
        "primage: unknown image primage/nothing:1.0: it is not on the local Docker engine; the local backend pulls "
        "nothing: build it (primage images build) or `docker load` it"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--image", "primage/segmentation:latest"], "--image 'primage/segmentation:latest' is not pinned"),
        (["--parallel", "0"], "--parallel must be at least 1 and --retries at least 0"),
        (["--output", "../elsewhere"], "--output '../elsewhere' must be a path relative to the space folder"),
        (["--output", "."], "--output must be a folder of the space, not the space itself"),
        (["--backend", "kubernetes", "--kubeconfig", "missing.conf"], "no kubeconfig at missing.conf"),
        (["--kubeconfig", "admin.conf"], "--kubeconfig is for --backend kubernetes"),
    ],
    ids=["unpinned-image", "no-parallelism", "output-outside", "output-is-the-space", "kubernetes", "kubeconfig"],
)
def test_usage_errors(space, options, message):
    assert refused(submit(space, *options), 2).startswith(f"primage: error: {message}")


def test_an_application_name_that_is_no_label(space):
    assert refused(submit(space, name="Pancreas_CT"), 2).startswith(
        "primage: error: 'Pancreas_CT' is not an application name: lower-case letters, digits and '-'"
    )


def test_onedata_on_the_local_backend_needs_a_mounted_folder():
    done = primage("htc", "submit", "pancreas", "--onedata", "MedicalImaging", "--files", "inputs/*")
    assert refused(done, 2) == (
        "primage: error: --onedata MedicalImaging: the local backend has no cluster whose nodes or pods mount a "
        "Onedata space; mount it on this machine with oneclient (e.g. `oneclient /mnt/onedata`: the space is then "
        "the folder /mnt/onedata/MedicalImaging) and give that folder with --space, or use --backend kubernetes"
    )


def test_a_batch_application_over_several_files(space):
    done = primage("batch", "submit", "pancreas", "--space", space, "--files", "inputs/*")
    assert refused(done, 2).startswith("primage: error: a batch application runs one task, and 2 inputs match")


def test_unknown_applications_in_every_apps_command():
    for argv in (["show", "nope"], ["logs", "nope"], ["output", "nope"], ["delete", "nope"]):
        assert refused(primage("apps", *argv), 1).startswith("primage: no application named nope"), argv
    assert refused(primage("notebook", "url", "nope"), 1).startswith("primage: no application named nope")
