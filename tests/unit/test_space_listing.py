"""The listing a pod prints of a Onedata space gives the inputs and results that inputs.find and
inputs.has_result give on the same folder: the pod's script (primage.apps.listing) is run here, on
folders of this machine, with this machine's GNU find, as the variant's entrypoint runs it."""

from __future__ import annotations

import os
import subprocess

import pytest

from primage.apps import inputs, listing
from primage.errors import PrimageError

OUTPUT = "outputs/liver"
# Patterns of the corpus below that reach no input: only the outputs; a folder holding a folder.
NO_INPUT = {"outputs/**", "inputs/deep/*"}


def run_listing(space, pattern: str, output: str = OUTPUT) -> listing.Listing:
    done = subprocess.run(
        listing.local_argv(space, pattern, output), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # What a pod's log holds: oneclient's messages share it.
    text = "primage-onedata: mounting the Onedata space\n" + done.stdout + "primage-onedata: unmounted\n"
    return listing.parse(text, "the Onedata space test")


def write(path, text="x", mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def space(tmp_path):
    root = tmp_path / "space"
    write(root / "inputs" / "case-1.nii.gz")
    write(root / "inputs" / "case-2.nii")
    write(root / "inputs" / "notes.txt")
    write(root / "inputs" / ".hidden.nii.gz")
    for n in range(3):
        write(root / "inputs" / "series-3" / f"slice-{n}.dcm")
    write(root / "inputs" / "mixed" / "a.nii.gz")  # a folder holding a volume: not a series
    write(root / "inputs" / "mixed" / "b.dcm")
    write(root / "inputs" / "deep" / "more" / "case-4.nii.gz")
    (root / "inputs" / "empty").mkdir()
    write(root / "top.nii.gz")
    write(root / "data" / "site-a" / "ct" / "p1.nii.gz")
    write(root / "data" / "site-b" / "ct" / "p2.nii.gz")
    write(root / OUTPUT / "inputs" / "case-1" / "mask.nii.gz")
    write(root / ".trash" / "old.nii.gz")
    (root / "inputs" / "link.nii.gz").symlink_to(root / "top.nii.gz")
    return root


@pytest.mark.parametrize(
    "pattern",
    [
        "inputs/*",
        "inputs/*.nii.gz",
        "inputs/*.nii*",
        "inputs/case-?.nii*",
        "inputs/[cs]*",
        "inputs/**",
        "inputs/**/*.nii.gz",
        "**/*.nii.gz",
        "**",
        "*",
        "*.nii.gz",
        "data/*/ct/*.nii.gz",
        "data/site-a/**",
        "inputs/series-3",
        "inputs/case-1.nii.gz",
        "inputs/deep/*",
        "outputs/**",
    ],
)
def test_the_pods_listing_finds_what_glob_finds_on_the_folder(space, pattern):
    try:
        expected = inputs.find(space, pattern, OUTPUT)
    except PrimageError:
        expected = None  # then the listing must refuse it too
    if expected is None:
        with pytest.raises(PrimageError, match="no file matches"):
            run_listing(space, pattern).find(pattern, OUTPUT)
        assert pattern in NO_INPUT
        return
    assert run_listing(space, pattern).find(pattern, OUTPUT) == expected
    assert pattern not in NO_INPUT


def test_a_pattern_that_reaches_nothing_names_the_spaces_top_level(space):
    with pytest.raises(PrimageError) as raised:
        run_listing(space, "scans/*.nii.gz").find("scans/*.nii.gz", OUTPUT)
    assert "no file matches --files 'scans/*.nii.gz' in the Onedata space test" in str(raised.value)
    assert "inputs/" in str(raised.value)
    assert "top.nii.gz" in str(raised.value)


def test_results_are_complete_when_the_marker_is_newer_than_the_input(space):
    write(space / "inputs" / "case-1.nii.gz", mtime=1_000_000)
    write(space / OUTPUT / "inputs" / "case-1" / "_SUCCESS", mtime=1_000_100)
    write(space / "inputs" / "case-2.nii", mtime=1_000_200)
    write(space / OUTPUT / "inputs" / "case-2" / "_SUCCESS", mtime=1_000_100)  # the input changed since
    write(space / OUTPUT / "inputs" / "series-3" / "_SUCCESS", mtime=2_000_000_000)
    found = run_listing(space, "inputs/*")
    for path in found.find("inputs/*", OUTPUT):
        result = inputs.result_folder(OUTPUT, path)
        assert found.has_result(path, result) == inputs.has_result(space, path, result), path
    assert found.has_result("inputs/case-1.nii.gz", f"{OUTPUT}/inputs/case-1")
    assert not found.has_result("inputs/case-2.nii", f"{OUTPUT}/inputs/case-2")
    assert found.has_result("inputs/series-3", f"{OUTPUT}/inputs/series-3")


def test_the_listing_goes_no_deeper_than_the_pattern(space):
    shallow = listing.plan("inputs/*.nii.gz", OUTPUT)
    assert shallow == [".", "1", "inputs", "2", "--markers", OUTPUT]
    assert listing.plan("**/*.nii.gz", OUTPUT) == [".", "-", "--markers", OUTPUT]
    found = run_listing(space, "inputs/*.nii.gz")
    assert "inputs/deep/more/case-4.nii.gz" not in found.entries
    assert "inputs/series-3/slice-0.dcm" in found.entries  # one level more: a series' own files


def test_a_name_with_a_newline_is_refused_not_split(space):
    write(space / "inputs" / "bad\nname.nii.gz")
    with pytest.raises(PrimageError, match="control character"):
        run_listing(space, "inputs/*")


@pytest.mark.parametrize(
    "log",
    ["", "primage-onedata: the space did not answer\n", f"{listing.BEGIN} inputs\nf 1.0 inputs/a.nii.gz\n"],
)
def test_a_log_without_a_whole_listing_is_an_error(log):
    with pytest.raises(PrimageError, match="did not complete"):
        listing.parse(log, "the Onedata space test")
